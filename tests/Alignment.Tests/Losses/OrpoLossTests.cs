using Alignment.Losses;
using static Alignment.Tests.Losses.LossTestKit;
using static TorchSharp.torch;

namespace Alignment.Tests.Losses;

public sealed class OrpoLossTests
{
    /// <summary>Odds written directly from probabilities: log(p / (1 − p)).</summary>
    static double LogOdds(double averageLogProb)
    {
        double p = Math.Exp(averageLogProb);
        return Math.Log(p / (1 - p));
    }

    [Fact]
    public void Loss_is_nll_minus_lambda_times_log_sigmoid_of_the_log_odds_ratio()
    {
        using var scope = NewDisposeScope();
        const double lambda = 0.25;
        var output = PreferenceLosses.Orpo(lambda).Compute(Sample.Forward());
        double[] ratio = Enumerable.Range(0, Sample.Count).Select(i =>
            LogSigmoid(LogOdds(Sample.Chosen[i] / Sample.ChosenCount[i]) - LogOdds(Sample.Rejected[i] / Sample.RejectedCount[i]))).ToArray();
        double nll = -Sample.Chosen.Sum() / Sample.ChosenCount.Sum();

        Assert.Equal(nll - lambda * ratio.Average(), Value(output.Loss), 10);
        Assert.Equal(ratio.Average(), Value(output.Metrics["log_odds_ratio"]), 10);
        Assert.Equal(nll, Value(output.Metrics["nll_loss"]), 12);
    }

    [Fact]
    public void Gradient_matches_finite_differences() =>
        AssertGradientMatchesFiniteDifferences(Sample, forward => new OrpoLoss(new() { Beta = 0.5 }).Compute(forward).Loss);

    [Theory]
    [InlineData(-1e-15)]
    [InlineData(0.0)]
    [InlineData(-1e-9)]
    [InlineData(-1e4)]
    public void Log_probs_near_zero_or_very_negative_give_a_finite_loss_and_gradient(double logProb)
    {
        using var scope = NewDisposeScope();
        var pairs = new Pairs([logProb, -2], [-3, logProb], [0, 0], [0, 0], [1, 1], [1, 1]);
        Tensor chosen = Vector(pairs.Chosen).requires_grad_(true);
        Tensor loss = new OrpoLoss().Compute(pairs.Forward(chosen)).Loss;
        loss.backward();
        Assert.True(double.IsFinite(Value(loss)));
        Assert.True(chosen.grad!.isfinite().all().item<bool>());
    }

    [Fact]
    public void Needs_no_reference()
    {
        Assert.False(new OrpoLoss().Requirements.Reference);
        Assert.True(new OrpoLoss().Requirements.ChosenNll);
    }
}
