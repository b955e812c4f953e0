using Alignment.Losses;
using static Alignment.Tests.Losses.LossTestKit;
using static TorchSharp.torch;

namespace Alignment.Tests.Losses;

public sealed class CpoLossTests
{
    [Fact]
    public void Simpo_is_the_margin_shifted_sigmoid_of_average_log_probs()
    {
        using var scope = NewDisposeScope();
        const double beta = 2.0, gamma = 0.5;
        var loss = PreferenceLosses.SimPo(beta, gamma);
        double expected = Enumerable.Range(0, Sample.Count).Select(i =>
            -LogSigmoid(beta * (Sample.Chosen[i] / Sample.ChosenCount[i] - Sample.Rejected[i] / Sample.RejectedCount[i]) - gamma)).Average();
        Assert.Equal(expected, Value(loss.Compute(Sample.Forward()).Loss), 12);
        Assert.False(loss.Requirements.Reference);
        Assert.True(loss.Requirements.LengthNormalized);
    }

    [Fact]
    public void Simpo_loss_is_log2_when_the_average_margin_equals_gamma_over_beta()
    {
        using var scope = NewDisposeScope();
        var pairs = new Pairs([-4.0], [-4.0 - 0.25 * 2], [0], [0], [2], [2]); // average margin (−2) − (−2.25) = 0.25 = γ/β
        var loss = new CpoLoss("simpo", new() { Beta = 2.0, SimpoGamma = 0.5 });
        Assert.Equal(Math.Log(2), Value(loss.Compute(pairs.Forward()).Loss), 12);
    }

    [Fact]
    public void Cpo_adds_alpha_times_the_chosen_nll_to_a_sigmoid_on_summed_log_probs()
    {
        using var scope = NewDisposeScope();
        const double beta = 0.1, alpha = 1.5, eps = 0.1;
        var output = new CpoLoss("cpo", new() { Beta = beta, CpoAlpha = alpha, LabelSmoothing = eps }).Compute(Sample.Forward());
        double preference = Enumerable.Range(0, Sample.Count).Select(i =>
        {
            double z = beta * (Sample.Chosen[i] - Sample.Rejected[i]);
            return -(1 - eps) * LogSigmoid(z) - eps * LogSigmoid(-z);
        }).Average();
        double nll = -Sample.Chosen.Sum() / Sample.ChosenCount.Sum();
        Assert.Equal(preference + alpha * nll, Value(output.Loss), 12);
        Assert.Equal(Sample.Chosen.Average() * beta, Value(output.Metrics["rewards/chosen"]), 12);
    }

    [Theory]
    [InlineData("cpo")]
    [InlineData("simpo")]
    public void Gradient_matches_finite_differences(string type) =>
        AssertGradientMatchesFiniteDifferences(Sample, forward => new CpoLoss(type, new() { Beta = 0.7, CpoAlpha = 0.5 }).Compute(forward).Loss);

    [Fact]
    public void Extreme_margins_stay_finite()
    {
        using var scope = NewDisposeScope();
        var pairs = new Pairs([-1e-12, -1e4], [-1e4, -1e-12], [0, 0], [0, 0], [1, 1], [1, 1]);
        Assert.True(double.IsFinite(Value(new CpoLoss("simpo", new() { Beta = 2 }).Compute(pairs.Forward()).Loss)));
        Assert.True(double.IsFinite(Value(new CpoLoss("cpo").Compute(pairs.Forward()).Loss)));
    }
}
