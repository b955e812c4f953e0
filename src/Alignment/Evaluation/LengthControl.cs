namespace Alignment.Evaluation;

/// <summary>
/// The logistic regression σ(a + b·x) of fractional outcomes y ∈ [0, 1] on one covariate, fitted by Newton's method on
/// the binomial log-likelihood (quasi-binomial for y = ½), with a tiny ridge on b so that a perfectly separated set still
/// gives an answer.
/// </summary>
internal static class LengthControl
{
    /// <summary>The intercept a and slope b.</summary>
    public static (double A, double B) Fit(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        double a = 0, b = 0;
        for (int iteration = 0; iteration < 100; iteration++)
        {
            double ga = 0, gb = -1e-6 * b, haa = 0, hab = 0, hbb = 1e-6;
            for (int i = 0; i < x.Count; i++)
            {
                double p = 1 / (1 + Math.Exp(-(a + b * x[i])));
                double w = p * (1 - p);
                ga += y[i] - p;
                gb += (y[i] - p) * x[i];
                haa += w;
                hab += w * x[i];
                hbb += w * x[i] * x[i];
            }
            double determinant = haa * hbb - hab * hab;
            if (determinant <= 0)
                break;
            double da = (hbb * ga - hab * gb) / determinant, db = (haa * gb - hab * ga) / determinant;
            (a, b) = (a + da, b + db);
            if (Math.Abs(da) + Math.Abs(db) < 1e-12)
                break;
        }
        return (a, b);
    }
}
