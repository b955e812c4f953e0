using Alignment.Data;
using Alignment.Kernels;
using Alignment.Losses;
using Alignment.Models;
using Alignment.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Tests.Training;

public sealed class SeparableLossTests
{
    /// <summary>The same loss without the separable declaration: the trainer takes the general path (logits made again in backward).</summary>
    sealed class GeneralPath(IPreferenceLoss inner) : IPreferenceLoss
    {
        public string Name => inner.Name;
        public LossRequirements Requirements => inner.Requirements with { SeparableByPair = false };
        public PreferenceLossOutput Compute(PreferenceForward forward) => inner.Compute(forward);
    }

    /// <summary>Counts how often the trainer evaluates the loss.</summary>
    sealed class Counting(IPreferenceLoss inner) : IPreferenceLoss
    {
        public int Calls { get; private set; }
        public string Name => inner.Name;
        public LossRequirements Requirements => inner.Requirements;
        public PreferenceLossOutput Compute(PreferenceForward forward)
        {
            Calls++;
            return inner.Compute(forward);
        }
    }

    static readonly PreferenceLossOptions Smoothed = new() { LabelSmoothing = 0.1 };

    /// <summary>Every built-in loss declared separable, with each modifier that changes how it reads the log-probabilities.</summary>
    public static TheoryData<string, PreferenceLossOptions> Separable() => new()
    {
        { "sigmoid", new() }, { "robust", Smoothed }, { "hinge", new() }, { "ipo", new() }, { "exo_pair", Smoothed },
        { "nca_pair", new() }, { "sppo_hard", new() }, { "apo_zero", new() }, { "apo_down", new() }, { "bco_pair", new() },
        { "discopop", new() }, { "sigmoid_norm", new() }, { "sft", new() },
        { "sigmoid", new() { RpoAlpha = 0.5 } }, { "sigmoid", new() { LdAlpha = 0.5 } }, { "sigmoid", new() { UseWeighting = true } },
        { "sigmoid", new() { FDivergence = FDivergence.JensenShannon } }, { "sigmoid", new() { ReferenceFree = true } },
        { "cpo", new() }, { "simpo", new() }, { "orpo", new() },
    };

    sealed record Batch(Tensor Hidden, Tensor Weight, Tensor Targets, Tensor Mask, Tensor Reference, Tensor Wpo);

    /// <summary>Three pairs in float64 with left and right padding, random reference sums and WPO weights.</summary>
    static Batch MakeBatch()
    {
        var generator = new Generator(3).manual_seed(3);
        const int rows = 6, time = 7, width = 8, vocab = 23;
        Tensor hidden = randn([rows, time, width], dtype: ScalarType.Float64, generator: generator).requires_grad_(true);
        Tensor weight = randn([vocab, width], dtype: ScalarType.Float64, generator: generator).requires_grad_(true);
        Tensor targets = randint(0, vocab, [rows, time], dtype: ScalarType.Int64, generator: generator);
        long[] starts = [0, 2, 1, 0, 3, 1], ends = [7, 6, 4, 5, 7, 2];
        Tensor position = arange(time, dtype: ScalarType.Int64).unsqueeze(0);
        Tensor mask = position.ge(tensor(starts).unsqueeze(1)).logical_and(position.lt(tensor(ends).unsqueeze(1)));
        targets = targets.where(mask, TokenLogProbs.IgnoreIndex);
        Tensor reference = randn([rows], dtype: ScalarType.Float64, generator: generator).sub(12);
        Tensor wpo = randn([rows], dtype: ScalarType.Float64, generator: generator).mul(0.3).sub(0.2);
        return new Batch(hidden, weight, targets, mask, reference, wpo);
    }

    /// <summary>The loss's input as <see cref="PreferenceTrainer"/> builds it.</summary>
    static PreferenceForward ForwardOf(Batch batch, Tensor perToken)
    {
        Tensor counts = TokenLogProbs.TokenCounts(batch.Mask);
        return new PreferenceForward
        {
            Chosen = CompletionLogProbs.FromTokens(perToken.narrow(0, 0, 3), batch.Mask.narrow(0, 0, 3), batch.Wpo.narrow(0, 0, 3)),
            Rejected = CompletionLogProbs.FromTokens(perToken.narrow(0, 3, 3), batch.Mask.narrow(0, 3, 3), batch.Wpo.narrow(0, 3, 3)),
            ReferenceChosen = new CompletionLogProbs(batch.Reference.narrow(0, 0, 3), counts.narrow(0, 0, 3)),
            ReferenceRejected = new CompletionLogProbs(batch.Reference.narrow(0, 3, 3), counts.narrow(0, 3, 3)),
        };
    }

    [Theory]
    [MemberData(nameof(Separable))]
    public void Pair_by_pair_gradients_equal_the_whole_batch_loss_gradients(string name, PreferenceLossOptions options)
    {
        using var scope = NewDisposeScope();
        IPreferenceLoss loss = PreferenceLosses.Create(name, options);
        Assert.True(loss.Requirements.SeparableByPair);
        Batch batch = MakeBatch();

        PreferenceLossOutput whole = loss.Compute(ForwardOf(batch, TokenLogProbs.FromHidden(batch.Hidden, batch.Weight, batch.Targets)));
        Tensor[] expected = autograd.grad([whole.Loss], [batch.Hidden, batch.Weight]).ToArray();

        var (values, carrier) = SeparableLoss.Run(loss, batch.Hidden, batch.Weight, batch.Targets, perToken => ForwardOf(batch, perToken));
        PreferenceLossOutput value;
        using (no_grad())
            value = loss.Compute(ForwardOf(batch, values));
        Tensor[] actual = autograd.grad([value.Loss.add(carrier)], [batch.Hidden, batch.Weight]).ToArray();

        Assert.Equal(whole.Loss.item<double>(), value.Loss.item<double>(), 12);
        Assert.True(actual[0].allclose(expected[0], rtol: 0, atol: 1e-11), $"hidden gradients differ by {actual[0].sub(expected[0]).abs().max().item<double>()}");
        Assert.True(actual[1].allclose(expected[1], rtol: 0, atol: 1e-11), $"weight gradients differ by {actual[1].sub(expected[1]).abs().max().item<double>()}");
        Assert.True(expected[1].abs().sum().item<double>() > 0, "the loss reaches the lm_head");
        foreach (var (metric, tensor) in whole.Metrics)
            Assert.Equal(tensor.item<double>(), value.Metrics[metric].item<double>(), 12);
    }

    [Theory]
    [InlineData("aot")]
    [InlineData("aot_unpaired")]
    [InlineData("kto")]
    public void Losses_that_couple_the_batch_are_not_separable(string name) =>
        Assert.False(PreferenceLosses.Create(name).Requirements.SeparableByPair);

    [Fact]
    public void A_combination_is_separable_only_when_every_part_is()
    {
        Assert.True(PreferenceLosses.Create(["sigmoid", "sft"], [1, 0.5]).Requirements.SeparableByPair);
        Assert.False(PreferenceLosses.Create(["sigmoid", "aot"], [1, 1]).Requirements.SeparableByPair);
    }

    /// <summary>Trains a few steps twice from the same start, on the fused path and on the general one.</summary>
    static (IReadOnlyList<IReadOnlyDictionary<string, double>> Fused, IReadOnlyList<IReadOnlyDictionary<string, double>> General) TrainBoth(
        IPreferenceLoss loss)
    {
        var runs = new List<IReadOnlyList<IReadOnlyDictionary<string, double>>>();
        foreach (IPreferenceLoss each in new[] { loss, new GeneralPath(loss) })
        {
            using var policy = PreferenceTrainerTests.Policy();
            using ReferenceModel reference = policy.CreateReference();
            var options = PreferenceTrainerTests.Options(steps: 3) with { GradientAccumulationSteps = 2, BatchSize = 2 };
            runs.Add(new PreferenceTrainer(policy, each, options, reference).Train(PreferenceTrainerTests.Pairs(12)).History);
        }
        return (runs[0], runs[1]);
    }

    [Fact]
    public void The_trainer_takes_the_fused_path_for_a_separable_loss_and_the_general_one_otherwise()
    {
        var separable = new Counting(PreferenceLosses.Dpo());
        var general = new Counting(new GeneralPath(PreferenceLosses.Dpo()));
        foreach (Counting loss in new[] { separable, general })
        {
            using var policy = PreferenceTrainerTests.Policy();
            using ReferenceModel reference = policy.CreateReference();
            var options = PreferenceTrainerTests.Options(steps: 3) with { GradientAccumulationSteps = 2, BatchSize = 2 };
            new PreferenceTrainer(policy, loss, options, reference).Train(PreferenceTrainerTests.Pairs(12));
        }
        Assert.Equal(3 * 2 * (2 + 1), separable.Calls); // per micro-batch: one gradient per pair, then the value and metrics
        Assert.Equal(3 * 2, general.Calls);
    }

    [Fact]
    public void A_frozen_lm_head_keeps_the_general_path_which_does_two_matmuls_already()
    {
        var loss = new Counting(PreferenceLosses.Dpo());
        using var policy = PreferenceTrainerTests.Policy();
        LoraAdapters.Attach(policy.Model, new LoraOptions { Rank = 2 });
        using ReferenceModel reference = policy.CreateReference();
        new PreferenceTrainer(policy, loss, PreferenceTrainerTests.Options(steps: 2) with { BatchSize = 2 }, reference).Train(PreferenceTrainerTests.Pairs(4));
        Assert.Equal(2, loss.Calls);
    }

    /// <summary>Records the margins each batch brought.</summary>
    sealed class MarginsSeen(IPreferenceLoss inner) : IPreferenceLoss
    {
        public List<double[]?> Seen { get; } = [];
        public string Name => inner.Name;
        public LossRequirements Requirements => inner.Requirements;
        public PreferenceLossOutput Compute(PreferenceForward forward)
        {
            Seen.Add(forward.Margins?.to_type(ScalarType.Float64).data<double>().ToArray());
            return inner.Compute(forward);
        }
    }

    [Fact]
    public void The_pairs_margins_reach_the_loss()
    {
        using var policy = PreferenceTrainerTests.Policy();
        using ReferenceModel reference = policy.CreateReference();
        var pairs = PreferenceTrainerTests.Pairs(4).Select((p, i) => p with { Margin = i == 2 ? null : i + 0.5 }).ToList();
        var loss = new MarginsSeen(new GeneralPath(PreferenceLosses.Dpo()));
        var options = PreferenceTrainerTests.Options(steps: 1) with { BatchSize = 4, Seed = 3 };
        new PreferenceTrainer(policy, loss, options, reference).Train(pairs);
        double[] seen = Assert.Single(loss.Seen)!;
        Assert.Equal([0, 0.5, 1.5, 3.5], seen.Order().ToArray()); // the batch is shuffled; a pair without a margin brings 0
    }

    [Theory]
    [InlineData("sigmoid")]
    [InlineData("orpo")]
    public void Training_on_the_fused_path_follows_the_general_path(string name)
    {
        var (fused, general) = TrainBoth(PreferenceLosses.Create(name, new PreferenceLossOptions { RpoAlpha = name == "sigmoid" ? 0.3 : null }));
        Assert.Equal(general.Count, fused.Count);
        for (int step = 0; step < general.Count; step++)
            foreach (string metric in new[] { "loss", "grad_norm", "rewards/margins", "logps/chosen" })
                Assert.True(Math.Abs(general[step][metric] - fused[step][metric]) <= 1e-5 * Math.Max(1, Math.Abs(general[step][metric])),
                    $"step {step + 1} {metric}: general {general[step][metric]}, fused {fused[step][metric]}");
    }
}
