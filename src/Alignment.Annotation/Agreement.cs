namespace Alignment.Annotation;

/// <summary>Agreement between raters: Cohen's κ for two, Fleiss' κ for many, and the majority of a pairwise item.</summary>
public static class Agreement
{
    /// <summary>
    /// Cohen's κ = (p_o − p_e) / (1 − p_e) over the items two raters both labelled: p_o the share they agree on, p_e the
    /// agreement their own label frequencies predict. NaN without common items or when p_e = 1 (both always gave one label).
    /// </summary>
    /// <param name="pairs">(first rater's label, second rater's label) per common item.</param>
    public static double CohensKappa(IReadOnlyList<(string First, string Second)> pairs)
    {
        if (pairs.Count == 0)
            return double.NaN;
        double n = pairs.Count;
        double observed = pairs.Count(p => p.First == p.Second) / n;
        double expected = pairs.Select(p => p.First).Concat(pairs.Select(p => p.Second)).Distinct()
            .Sum(label => pairs.Count(p => p.First == label) / n * (pairs.Count(p => p.Second == label) / n));
        return expected >= 1 ? double.NaN : (observed - expected) / (1 - expected);
    }

    /// <summary>
    /// Fleiss' κ over items with two or more labels (each item may have its own number of raters): P_i =
    /// Σ_j n_ij(n_ij − 1) / (n_i(n_i − 1)), P̄ their mean, p_j = Σ_i n_ij / Σ_i n_i, P̄_e = Σ_j p_j², κ = (P̄ − P̄_e) / (1 − P̄_e).
    /// NaN without such items or when P̄_e = 1.
    /// </summary>
    /// <param name="items">The labels of each item.</param>
    public static double FleissKappa(IEnumerable<IReadOnlyList<string>> items)
    {
        var rated = items.Where(labels => labels.Count >= 2).ToList();
        if (rated.Count == 0)
            return double.NaN;
        double agreement = rated.Average(labels =>
        {
            double n = labels.Count;
            return labels.GroupBy(l => l).Sum(g => (double)g.Count() * (g.Count() - 1)) / (n * (n - 1));
        });
        double total = rated.Sum(l => l.Count);
        double expected = rated.SelectMany(l => l).GroupBy(l => l).Sum(g => Math.Pow(g.Count() / total, 2));
        return expected >= 1 ? double.NaN : (agreement - expected) / (1 - expected);
    }

    /// <summary>
    /// The majority of a pairwise item's votes, as <c>PreferenceFormats.ReadVoted</c> decides it: ties are not votes, a
    /// strict majority of <c>a</c> or <c>b</c> wins, agreement = the winner's share of the a/b votes; no majority gives null.
    /// </summary>
    public static (string? Majority, double Agreement) Majority(IEnumerable<string> labels)
    {
        var list = labels.ToList();
        int a = list.Count(l => l == "a"), b = list.Count(l => l == "b");
        if (a == b)
            return (null, a + b == 0 ? 0 : 0.5);
        return (a > b ? "a" : "b", (double)Math.Max(a, b) / (a + b));
    }
}
