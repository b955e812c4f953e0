using Alignment.Losses;
using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Tests.Losses;

/// <summary>Scalar reference math (written out independently of the library) and batch builders for the loss tests.</summary>
internal static class LossTestKit
{
    public static double Sigmoid(double x) => x >= 0 ? 1 / (1 + Math.Exp(-x)) : Math.Exp(x) / (1 + Math.Exp(x));

    /// <summary>log σ(x) = −log(1 + e^(−x)), evaluated without overflow.</summary>
    public static double LogSigmoid(double x) => x >= 0 ? -Math.Log(1 + Math.Exp(-x)) : x - Math.Log(1 + Math.Exp(x));

    public static Tensor Vector(params double[] values) => tensor(values, ScalarType.Float64);

    /// <summary>A paired batch from per-sequence sums and counts (float64).</summary>
    public sealed record Pairs(double[] Chosen, double[] Rejected, double[] RefChosen, double[] RefRejected, double[] ChosenCount, double[] RejectedCount)
    {
        public PreferenceForward Forward(Tensor? chosen = null, Tensor? rejected = null) => new()
        {
            Chosen = new CompletionLogProbs(chosen ?? Vector(Chosen), Vector(ChosenCount)),
            Rejected = new CompletionLogProbs(rejected ?? Vector(Rejected), Vector(RejectedCount)),
            ReferenceChosen = new CompletionLogProbs(Vector(RefChosen), Vector(ChosenCount)),
            ReferenceRejected = new CompletionLogProbs(Vector(RefRejected), Vector(RejectedCount)),
        };

        public int Count => Chosen.Length;
    }

    public static readonly Pairs Sample = new(
        Chosen: [-5.0, -10.0, -3.0, -20.0],
        Rejected: [-7.0, -9.0, -12.0, -18.5],
        RefChosen: [-6.0, -9.5, -4.2, -19.0], // no two chosen log-ratios tie, so sort-based losses are differentiable here
        RefRejected: [-6.5, -9.0, -10.0, -19.5],
        ChosenCount: [3, 5, 2, 8],
        RejectedCount: [4, 2, 6, 7]);

    public static double Value(Tensor scalar) => scalar.to_type(ScalarType.Float64).item<double>();

    /// <summary>
    /// Compares autograd's gradient of the loss with respect to the policy's chosen and rejected sums with central
    /// finite differences of <paramref name="evaluate"/>.
    /// </summary>
    public static void AssertGradientMatchesFiniteDifferences(Pairs pairs, Func<PreferenceForward, Tensor> evaluate, double tolerance = 1e-6)
    {
        Tensor chosen = Vector(pairs.Chosen).requires_grad_(true);
        Tensor rejected = Vector(pairs.Rejected).requires_grad_(true);
        evaluate(pairs.Forward(chosen, rejected)).backward();

        const double h = 1e-6;
        foreach (var (parameter, values, isChosen) in new[] { (chosen, pairs.Chosen, true), (rejected, pairs.Rejected, false) })
        {
            for (int i = 0; i < values.Length; i++)
            {
                double Evaluate(double shift)
                {
                    double[] moved = (double[])values.Clone();
                    moved[i] += shift;
                    Pairs shifted = isChosen ? pairs with { Chosen = moved } : pairs with { Rejected = moved };
                    return Value(evaluate(shifted.Forward()));
                }
                double numeric = (Evaluate(h) - Evaluate(-h)) / (2 * h);
                double analytic = parameter.grad is null ? 0.0 : parameter.grad[i].item<double>(); // no graph path: zero gradient
                Assert.True(Math.Abs(numeric - analytic) <= tolerance,
                    $"d loss / d {(isChosen ? "chosen" : "rejected")}[{i}]: autograd {analytic}, finite differences {numeric}");
            }
        }
    }
}
