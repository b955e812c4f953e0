using Alignment.Losses;
using static Alignment.Tests.Losses.LossTestKit;
using static TorchSharp.torch;

namespace Alignment.Tests.Losses;

public sealed class KtoLossTests
{
    static readonly double[] Policy = [-5, -8, -3, -12, -7];
    static readonly double[] Reference = [-6, -7, -3.5, -11, -7.2];
    static readonly bool[] Desirable = [true, false, true, false, false];
    static readonly double[] PolicyKl = [-9, -10, -6, -14, -8];
    static readonly double[] ReferenceKl = [-9.5, -9.7, -6.6, -14.2, -8.1];

    static PreferenceForward Forward(double[] policy, double[]? policyKl = null, double[]? referenceKl = null, bool[]? desirable = null, Tensor? policyTensor = null)
    {
        policyKl ??= PolicyKl;
        referenceKl ??= ReferenceKl;
        return new PreferenceForward
        {
            Completions = new CompletionLogProbs(policyTensor ?? Vector(policy), Vector(policy.Select(_ => 4.0).ToArray())),
            ReferenceCompletions = new CompletionLogProbs(Vector(Reference[..policy.Length]), Vector(policy.Select(_ => 4.0).ToArray())),
            Desirable = tensor(desirable ?? Desirable[..policy.Length]),
            KlCompletions = policyKl.Length == 0 ? null : new CompletionLogProbs(Vector(policyKl), Vector(policyKl.Select(_ => 4.0).ToArray())),
            ReferenceKlCompletions = referenceKl.Length == 0 ? null : new CompletionLogProbs(Vector(referenceKl), Vector(referenceKl.Select(_ => 4.0).ToArray())),
        };
    }

    static double Expected(double beta, double wd, double wu, double z0, double[] policy, bool[] desirable) =>
        Enumerable.Range(0, policy.Length).Select(i =>
        {
            double r = policy[i] - Reference[i];
            return desirable[i] ? wd * (1 - Sigmoid(beta * (r - z0))) : wu * (1 - Sigmoid(beta * (z0 - r)));
        }).Average();

    [Fact]
    public void Kto_loss_uses_the_clamped_mean_kl_of_mismatched_pairs_as_reference_point()
    {
        using var scope = NewDisposeScope();
        const double beta = 0.4, wd = 1.0, wu = 1.33;
        double z0 = Math.Max(0, PolicyKl.Zip(ReferenceKl, (p, r) => p - r).Average());
        Assert.True(z0 > 0);
        var output = PreferenceLosses.Kto(beta, wd, wu).Compute(Forward(Policy));
        Assert.Equal(Expected(beta, wd, wu, z0, Policy, Desirable), Value(output.Loss), 12);
        Assert.Equal(z0, Value(output.Metrics["kl"]), 12);

        double[] rewards = Policy.Zip(Reference, (p, r) => beta * (p - r)).ToArray();
        double chosen = rewards.Where((_, i) => Desirable[i]).Average(), rejected = rewards.Where((_, i) => !Desirable[i]).Average();
        Assert.Equal(chosen, Value(output.Metrics["rewards/chosen"]), 12);
        Assert.Equal(rejected, Value(output.Metrics["rewards/rejected"]), 12);
        Assert.Equal(chosen - rejected, Value(output.Metrics["rewards/margins"]), 12);
    }

    [Fact]
    public void A_negative_kl_estimate_is_clamped_to_zero()
    {
        using var scope = NewDisposeScope();
        double[] below = ReferenceKl.Select(x => x - 1).ToArray();
        var output = PreferenceLosses.Kto(0.4).Compute(Forward(Policy, policyKl: below, referenceKl: ReferenceKl));
        Assert.Equal(0.0, Value(output.Metrics["kl"]));
        Assert.Equal(Expected(0.4, 1, 1, 0, Policy, Desirable), Value(output.Loss), 12);
    }

    [Fact]
    public void Gradient_flows_to_the_completions_but_not_through_the_kl_estimate()
    {
        using var scope = NewDisposeScope();
        Tensor policy = Vector(Policy).requires_grad_(true);
        var forward = Forward(Policy, policyTensor: policy);
        Tensor klPolicy = forward.KlCompletions!.Sums.requires_grad_(true);
        PreferenceLosses.Kto(0.4).Compute(forward).Loss.backward();

        double z0 = Math.Max(0, PolicyKl.Zip(ReferenceKl, (p, r) => p - r).Average());
        for (int i = 0; i < Policy.Length; i++)
        {
            double r = Policy[i] - Reference[i];
            double x = Desirable[i] ? 0.4 * (r - z0) : 0.4 * (z0 - r);
            double derivative = -Sigmoid(x) * (1 - Sigmoid(x)) * (Desirable[i] ? 0.4 : -0.4) / Policy.Length;
            Assert.Equal(derivative, policy.grad![i].item<double>(), 12);
        }
        Assert.Null(klPolicy.grad);
    }

    [Fact]
    public void A_batch_of_one_without_mismatched_pairs_uses_z0_of_zero_and_warns()
    {
        using var scope = NewDisposeScope();
        var logger = new RecordingLogger();
        var loss = new KtoLoss("kto", new() { Beta = 0.4 }, logger);
        var output = loss.Compute(Forward(Policy[..1], policyKl: [], referenceKl: []));

        Assert.Equal(Expected(0.4, 1, 1, 0, Policy[..1], Desirable[..1]), Value(output.Loss), 12);
        Assert.Equal(0.0, Value(output.Metrics["kl"]));
        Assert.False(output.Metrics.ContainsKey("rewards/rejected")); // no undesirable example: no NaN mean
        Assert.Contains(logger.Messages, m => m.Contains("no mismatched KL pairs"));
    }

    [Fact]
    public void Apo_zero_unpaired_needs_no_kl_pairs()
    {
        using var scope = NewDisposeScope();
        var loss = new KtoLoss("apo_zero_unpaired", new() { Beta = 0.4, UndesirableWeight = 2 });
        Assert.False(loss.Requirements.KlCompletions);
        double expected = Enumerable.Range(0, Policy.Length).Select(i =>
        {
            double r = Policy[i] - Reference[i];
            return Desirable[i] ? 1 - Sigmoid(0.4 * r) : 2 * Sigmoid(0.4 * r);
        }).Average();
        Assert.Equal(expected, Value(loss.Compute(Forward(Policy, policyKl: [], referenceKl: [])).Loss), 12);
    }

    [Theory]
    [InlineData(100, 100, 1.0, 1.0, false)]
    [InlineData(130, 100, 1.0, 1.0, false)]
    [InlineData(140, 100, 1.0, 1.0, true)]
    [InlineData(50, 100, 1.0, 1.0, true)]
    [InlineData(50, 100, 2.0, 1.0, false)]
    [InlineData(10, 0, 1.0, 1.0, true)]
    public void Class_balance_outside_the_papers_range_is_warned(long desirable, long undesirable, double wd, double wu, bool warned)
    {
        var logger = new RecordingLogger();
        var loss = new KtoLoss("kto", new() { DesirableWeight = wd, UndesirableWeight = wu }, logger);
        string? warning = loss.CheckDesirableBalance(desirable, undesirable);
        Assert.Equal(warned, warning is not null);
        Assert.Equal(warned, logger.Messages.Count == 1);
    }

    [Fact]
    public void Extreme_log_ratios_stay_finite()
    {
        using var scope = NewDisposeScope();
        double[] extreme = [-1e4, -1e-12, 1e4 - 10, -3, -7];
        Assert.True(double.IsFinite(Value(PreferenceLosses.Kto(1.0).Compute(Forward(extreme)).Loss)));
    }

    [Fact]
    public void Kto_cannot_be_combined_with_paired_losses()
    {
        Assert.Throws<ArgumentException>(() => new CombinedPreferenceLoss([(PreferenceLosses.Kto(), 1.0), (PreferenceLosses.Dpo(), 1.0)]));
    }
}
