using Alignment.Rl;
using static TorchSharp.torch;

namespace Alignment.Tests.Rl;

public sealed class RlMathTests
{
    static Tensor T(params double[] values) => tensor(values, ScalarType.Float64);
    static double[] D(Tensor t) => t.to_type(ScalarType.Float64).data<double>().ToArray();

    [Fact]
    public void Gae_matches_a_hand_worked_four_step_example()
    {
        using var scope = NewDisposeScope();
        // rewards 0, 0, 0, 1; values 0.5, 0.6, 0.7, 0.8; γ = 1, λ = 0.95:
        // δ3 = 1 − 0.8 = 0.2 → A3 = 0.2; δ2 = 0.8 − 0.7 = 0.1 → A2 = 0.1 + 0.95·0.2 = 0.29;
        // δ1 = 0.1 → A1 = 0.1 + 0.95·0.29 = 0.3755; δ0 = 0.1 → A0 = 0.1 + 0.95·0.3755 = 0.456725.
        var (advantages, returns) = RlMath.Gae(T(0, 0, 0, 1).unsqueeze(0), T(0.5, 0.6, 0.7, 0.8).unsqueeze(0), ones(1, 4), 1.0, 0.95);
        Assert.Equal([0.456725, 0.3755, 0.29, 0.2], D(advantages[0]), new Tolerance(1e-12));
        Assert.Equal([0.956725, 0.9755, 0.99, 1.0], D(returns[0]), new Tolerance(1e-12));
    }

    [Fact]
    public void Gae_stops_at_the_end_of_each_sequence_and_discounts_with_gamma()
    {
        using var scope = NewDisposeScope();
        // Length 3 of 4, γ = 0.9, λ = 0.5: δ2 = 2 − 1 = 1 → A2 = 1; δ1 = 0.9·1 − 1 = −0.1 → A1 = −0.1 + 0.45·1 = 0.35;
        // δ0 = 0.9·1 − 1 = −0.1 → A0 = −0.1 + 0.45·0.35 = 0.0575.
        var (advantages, _) = RlMath.Gae(T(0, 0, 2, 0).unsqueeze(0), T(1, 1, 1, 9).unsqueeze(0), T(1, 1, 1, 0).unsqueeze(0), 0.9, 0.5);
        Assert.Equal([0.0575, 0.35, 1.0, 0.0], D(advantages[0]), new Tolerance(1e-12));
    }

    [Fact]
    public void Kl_estimators_follow_their_definitions()
    {
        using var scope = NewDisposeScope();
        Tensor logp = T(-1.0, -2.0), reference = T(-1.5, -1.0);
        Assert.Equal([0.5, -1.0], D(RlMath.Kl(logp, reference, KlEstimator.K1)), new Tolerance(1e-12));
        double K3(double r) => Math.Exp(r) - r - 1; // r = log π_ref − log π
        Assert.Equal([K3(-0.5), K3(1.0)], D(RlMath.Kl(logp, reference, KlEstimator.K3)), new Tolerance(1e-12));
    }

    [Fact]
    public void Whitening_gives_zero_mean_and_unit_variance_over_the_mask()
    {
        using var scope = NewDisposeScope();
        Tensor x = T(1, 2, 3, 100).unsqueeze(0), mask = T(1, 1, 1, 0).unsqueeze(0);
        double[] w = D(RlMath.Whiten(x, mask)[0]);
        double s = Math.Sqrt(2.0 / 3 + 1e-8);
        Assert.Equal([-1 / s, 0, 1 / s, 0], w, new Tolerance(1e-9));
    }

    [Fact]
    public void The_clipped_surrogate_and_value_loss_follow_ppo()
    {
        using var scope = NewDisposeScope();
        // Token 1: ρ = 1.5, A = +1 → max(−1.5, −1.2) = −1.2. Token 2: ρ = 0.5, A = −1 → max(0.5, 0.8) = 0.8. Both clipped.
        var (loss, clipFraction, approxKl, ratio) = RlMath.ClippedSurrogate(T(Math.Log(1.5), Math.Log(0.5)), T(0, 0), T(1, -1), ones(2), 0.2);
        Assert.Equal(-0.2, loss.item<double>(), 12);
        Assert.Equal(1.0, clipFraction.item<double>(), 12);
        Assert.Equal(0.5 * (Math.Pow(Math.Log(1.5), 2) + Math.Pow(Math.Log(0.5), 2)) / 2, approxKl.item<double>(), 12);
        Assert.Equal(1.0, ratio.item<double>(), 12);

        // V = 2, V_old = 1, R = 3, ε = 0.5: clipped V = 1.5; max((2−3)², (1.5−3)²) = 2.25; ½ → 1.125.
        var (valueLoss, valueClip) = RlMath.ClippedValueLoss(T(2), T(1), T(3), ones(1), 0.5);
        Assert.Equal(1.125, valueLoss.item<double>(), 12);
        Assert.Equal(1.0, valueClip.item<double>(), 12);
    }

    [Fact]
    public void Group_advantages_of_grpo_and_rloo()
    {
        using var scope = NewDisposeScope();
        Assert.Equal([-1 / 1.0001, 0, 1 / 1.0001, 0, 0, 0], D(RlMath.GroupAdvantages(T(1, 2, 3, 5, 5, 5), 3, RewardScaling.Group)), new Tolerance(1e-12));
        Assert.Equal([-1.5, 0, 1.5], D(RlMath.LeaveOneOut(T(1, 2, 3), 3)), new Tolerance(1e-12));
        Assert.Throws<ArgumentException>(() => RlMath.LeaveOneOut(T(1, 2, 3), 2));
    }

    [Fact]
    public void Reward_scaling_divides_by_the_group_the_batch_or_nothing()
    {
        using var scope = NewDisposeScope();
        // Groups (1, 2, 3) and (5, 5, 9): centred −1, 0, 1 and −4/3, −4/3, 8/3; group stds 1 and √(16/3);
        // the batch (1, 2, 3, 5, 5, 9): Σx = 25, Σx² = 145, unbiased variance (145 − 6·(25/6)²) / 5.
        double batchStd = Math.Sqrt((145 - 6 * Math.Pow(25 / 6.0, 2)) / 5);
        double[] centred = [-1, 0, 1, -4 / 3.0, -4 / 3.0, 8 / 3.0];
        Assert.Equal(centred, D(RlMath.GroupAdvantages(T(1, 2, 3, 5, 5, 9), 3, RewardScaling.None)), new Tolerance(1e-12));
        Assert.Equal(centred.Select(c => c / (batchStd + 1e-4)), D(RlMath.GroupAdvantages(T(1, 2, 3, 5, 5, 9), 3, RewardScaling.Batch)), new Tolerance(1e-12));
        double[] byGroup = [-1 / 1.0001, 0, 1 / 1.0001, .. centred[3..].Select(c => c / (Math.Sqrt(16 / 3.0) + 1e-4))];
        Assert.Equal(byGroup, D(RlMath.GroupAdvantages(T(1, 2, 3, 5, 5, 9), 3, RewardScaling.Group)), new Tolerance(1e-12));
    }

    [Fact]
    public void Unscorable_samples_are_left_out_of_the_baselines_and_get_advantage_0()
    {
        using var scope = NewDisposeScope();
        double nan = double.NaN;
        // Groups (1, NaN, 3, 8) and (NaN, 4, NaN, NaN): the first's scored mean 4 and unbiased std √((9 + 1 + 16) / 2) = √13;
        // the second has one scored sample: its std is undefined, so dividing by it gives 0 everywhere (TRL's nan_to_num).
        Tensor scores = T(1, nan, 3, 8, nan, 4, nan, nan);
        double s = Math.Sqrt(13) + 1e-4;
        Assert.Equal([-3 / s, 0, -1 / s, 4 / s, 0, 0, 0, 0], D(RlMath.GroupAdvantages(scores, 4, RewardScaling.Group)), new Tolerance(1e-12));
        Assert.Equal([-3, 0, -1, 4, 0, 0, 0, 0], D(RlMath.GroupAdvantages(scores, 4, RewardScaling.None)), new Tolerance(1e-12));
        // The batch: scored 1, 3, 8, 4 — mean 4, unbiased variance (9 + 1 + 16 + 0) / 3; each centred on its group's mean.
        double b = Math.Sqrt(26 / 3.0) + 1e-4;
        Assert.Equal([-3 / b, 0, -1 / b, 4 / b, 0, 0, 0, 0], D(RlMath.GroupAdvantages(scores, 4, RewardScaling.Batch)), new Tolerance(1e-12));
        // RLOO: 1 − (3 + 8)/2, 3 − (1 + 8)/2, 8 − (1 + 3)/2; the lone scored sample of the second group has no baseline.
        Assert.Equal([-4.5, 0, -1.5, 6, 0, 0, 0, 0], D(RlMath.LeaveOneOut(scores, 4)), new Tolerance(1e-12));
    }

    /// <summary>Two completions of 3 and 1 tokens (T = 3), per-token losses (1, 2, 3) and (4, ·, ·).</summary>
    static (Tensor Loss, Tensor Mask) UnequalLengths() => (T(1, 2, 3, 4, 50, 60).view(2, 3), T(1, 1, 1, 1, 0, 0).view(2, 3));

    [Theory]
    [InlineData(GrpoLossType.Grpo, 3.0)]      // per-completion means 2 and 4, then their mean
    [InlineData(GrpoLossType.Bnpo, 2.5)]      // (1 + 2 + 3 + 4) / 4 tokens
    [InlineData(GrpoLossType.Dapo, 2.5)]      // the same in one minibatch (the engine weighs minibatches by tokens)
    [InlineData(GrpoLossType.DrGrpo, 10 / 8.0)] // 10 / (2 completions × L = 4)
    public void Loss_types_reduce_a_batch_of_unequal_lengths_as_their_definitions_say(GrpoLossType type, double expected)
    {
        using var scope = NewDisposeScope();
        var (loss, mask) = UnequalLengths();
        Assert.Equal(expected, RlMath.Reduce(loss, mask, type, maxCompletionLength: 4).item<double>(), 12);
    }

    [Fact]
    public void Clip_higher_and_sequence_level_ratios()
    {
        using var scope = NewDisposeScope();
        // One completion of two tokens, advantage +1: log-ratios ln 1.5 and ln 0.9.
        Tensor logProbs = T(Math.Log(1.5), Math.Log(0.9)).view(1, 2), old = zeros(1, 2, ScalarType.Float64), mask = ones(1, 2, ScalarType.Float64);
        Tensor advantage = ones(1, 2, ScalarType.Float64);
        // Token level, ε_low 0.2, ε_high 0.28: ratio 1.5 clips to 1.28 (−1.28), 0.9 stays (−0.9); only the first is clipped, high.
        var (perToken, low, high) = RlMath.ClippedPerToken(logProbs, old, advantage, mask, 0.2, 0.28, ImportanceSamplingLevel.Token);
        Assert.Equal([-1.28, -0.9], D(perToken[0]), new Tolerance(1e-12));
        Assert.Equal([false, false], low[0].data<bool>().ToArray());
        Assert.Equal([true, false], high[0].data<bool>().ToArray());
        // Sequence level (GSPO): both tokens use the geometric mean √(1.5 · 0.9) ≈ 1.162, inside the clip range.
        var (sequence, _, _) = RlMath.ClippedPerToken(logProbs, old, advantage, mask, 0.2, 0.28, ImportanceSamplingLevel.Sequence);
        Assert.Equal([-Math.Sqrt(1.35), -Math.Sqrt(1.35)], D(sequence[0]), new Tolerance(1e-12));
        // A negative advantage with a small ratio clips low: ratio 0.5 → clip(0.5) = 0.8, −min(−0.5, −0.8) = 0.8.
        var (negative, lowNeg, _) = RlMath.ClippedPerToken(T(Math.Log(0.5)).view(1, 1), zeros(1, 1, ScalarType.Float64), T(-1).view(1, 1), ones(1, 1), 0.2, 0.28, ImportanceSamplingLevel.Token);
        Assert.Equal(0.8, negative.item<double>(), 12);
        Assert.True(lowNeg.item<bool>());
    }

    [Fact]
    public void The_adaptive_kl_controller_moves_towards_its_target()
    {
        var controller = new AdaptiveKlController(initial: 0.1, target: 6, horizon: 10_000);
        controller.Update(currentKl: 12, samples: 100);  // error clipped to +0.2: β · (1 + 0.2·100/10 000)
        Assert.Equal(0.1 * 1.002, controller.Value, 12);
        controller.Update(currentKl: 3, samples: 100);   // error −0.5 clipped to −0.2
        Assert.Equal(0.1 * 1.002 * 0.998, controller.Value, 12);
    }

    sealed class Tolerance(double epsilon) : IEqualityComparer<double>
    {
        public bool Equals(double x, double y) => Math.Abs(x - y) <= epsilon;
        public int GetHashCode(double obj) => 0;
    }
}
