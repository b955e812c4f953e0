using Alignment.Data;
using Alignment.Losses;
using Alignment.Models;
using Alignment.Tests.Models;
using Alignment.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Tests.Training;

public sealed class PreferenceTrainerTests : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("alignment-train-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>Random prompts; the chosen completion counts up from the prompt's last token, the rejected one repeats it.</summary>
    internal static List<TokenizedPair> Pairs(int count, int seed = 0)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(i =>
        {
            int[] prompt = [1, random.Next(3, 60), random.Next(3, 60)];
            int last = prompt[^1];
            return new TokenizedPair(prompt, [(last + 1) % 64, (last + 2) % 64, 2], [last, last, 2], new SourceLocation("pairs.jsonl", i + 1));
        }).ToList();
    }

    internal static PolicyModel Policy(long seed = 7) => new(TinyModels.Random(TinyModels.ConfigJson(), seed));

    internal static TrainingOptions Options(string? output = null, int steps = 30) => new()
    {
        LearningRate = 5e-3, BatchSize = 4, MaxSteps = steps, Schedule = LearningRateSchedule.Constant, Seed = 11, OutputDir = output,
    };

    [Fact]
    public void Dpo_raises_implicit_reward_accuracy_on_the_training_pairs_above_0_9()
    {
        using var policy = Policy();
        using ReferenceModel reference = policy.CreateReference();
        var pairs = Pairs(8);
        var trainer = new PreferenceTrainer(policy, PreferenceLosses.Dpo(beta: 0.1), Options(), reference);
        double before = trainer.Evaluate(pairs)["loss"];

        TrainingResult result = trainer.Train(pairs);

        var after = trainer.Evaluate(pairs);
        Assert.Equal(30, result.Steps);
        Assert.Equal(Math.Log(2), before, 5); // policy = reference at the start
        Assert.True(after["rewards/accuracies"] > 0.9, $"accuracy {after["rewards/accuracies"]}");
        Assert.True(after["loss"] < before, $"loss {before} → {after["loss"]}");
        Assert.All(new[] { "loss", "learning_rate", "grad_norm", "epoch", "tokens_per_second", "rewards/margins", "logps/chosen" },
            key => Assert.Contains(key, result.History[^1].Keys));
    }

    [Fact]
    public void Precomputed_reference_log_probs_give_the_losses_of_a_live_reference()
    {
        using var policy = Policy();
        using ReferenceModel reference = policy.CreateReference();
        using (no_grad())
            policy.Model.parameters().First().add_(0.05); // make the policy differ from the reference
        var pairs = Pairs(6);
        var precomputed = ReferenceLogProbs.Compute(reference, pairs, new TrainingOptions { BatchSize = 4 });
        string cache = Path.Combine(_folder, "ref.tsv");
        precomputed.Save(cache);

        var live = new PreferenceTrainer(policy, PreferenceLosses.Dpo(), Options(), reference).Evaluate(pairs);
        var cached = new PreferenceTrainer(policy, PreferenceLosses.Dpo(), Options(), precomputed: ReferenceLogProbs.Load(cache)).Evaluate(pairs);

        foreach (string key in live.Keys)
            Assert.Equal(live[key], cached[key], 5);
    }

    [Fact]
    public void The_same_seed_gives_the_same_metrics()
    {
        double[] Run()
        {
            using var policy = Policy();
            using ReferenceModel reference = policy.CreateReference();
            var result = new PreferenceTrainer(policy, PreferenceLosses.Dpo(), Options(steps: 5), reference).Train(Pairs(8));
            return result.History.Select(h => h["loss"]).ToArray();
        }
        Assert.Equal(Run(), Run());
    }

    [Fact]
    public void A_resumed_run_equals_a_straight_run()
    {
        double[] Losses(TrainingResult r) => r.History.Where(h => h.ContainsKey("loss") && !h.ContainsKey("eval_loss")).Select(h => h["loss"]).ToArray();
        var pairs = Pairs(8);

        TrainingResult straight;
        using (var policy = Policy())
        using (var reference = policy.CreateReference())
            straight = new PreferenceTrainer(policy, PreferenceLosses.Dpo(), Options(Path.Combine(_folder, "straight"), steps: 6), reference).Train(pairs);

        string interrupted = Path.Combine(_folder, "interrupted");
        using (var policy = Policy())
        using (var reference = policy.CreateReference())
        {
            using var cancel = new CancellationTokenSource();
            var options = Options(interrupted, steps: 6) with { SaveSteps = 1 };
            var progress = new ProgressCallback(new SynchronousProgress(p => { if (p.Step == 3) cancel.Cancel(); }));
            TrainingResult first = new PreferenceTrainer(policy, PreferenceLosses.Dpo(), options, reference, callbacks: [progress]).Train(pairs, cancellationToken: cancel.Token);
            Assert.True(first.StoppedEarly);
            Assert.Equal(3, first.Steps);
        }
        TrainingResult resumed;
        using (var policy = Policy(seed: 999)) // different starting weights: the checkpoint must overwrite them
        using (var reference = new PolicyModel(TinyModels.Random(TinyModels.ConfigJson(), 7)).CreateReference())
            resumed = new PreferenceTrainer(policy, PreferenceLosses.Dpo(), Options(interrupted, steps: 6), reference).Train(pairs, resume: true);

        Assert.Equal(Losses(straight), Losses(resumed));
        Assert.Equal(6, File.ReadAllLines(Path.Combine(interrupted, "metrics.jsonl")).Length);
    }

    sealed class SynchronousProgress(Action<TrainingProgress> action) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => action(value);
    }

    sealed class NanLoss : IPreferenceLoss
    {
        public string Name => "nan";
        public LossRequirements Requirements { get; } = new(PreferenceDataKind.Paired, Reference: false);
        public PreferenceLossOutput Compute(PreferenceForward forward) =>
            new(forward.Chosen!.Sums.sum().mul(double.NaN), new Dictionary<string, Tensor>());
    }

    [Fact]
    public void A_nan_loss_stops_training_naming_the_step_and_the_batch_without_touching_the_weights()
    {
        using var policy = Policy();
        Tensor before = policy.Model.parameters().First().detach().clone();
        var error = Assert.Throws<NonFiniteLossException>(() => new PreferenceTrainer(policy, new NanLoss(), Options()).Train(Pairs(4)));
        Assert.Contains("step 1", error.Message);
        Assert.Contains("pairs.jsonl:", error.Message);
        Assert.True(policy.Model.parameters().First().equal(before).all().item<bool>());

        TrainingResult skipped = new PreferenceTrainer(policy, new NanLoss(), Options(steps: 3) with { SkipNonFiniteSteps = true }).Train(Pairs(4));
        Assert.Empty(skipped.History);
        Assert.True(policy.Model.parameters().First().equal(before).all().item<bool>());
    }

    [Fact]
    public void A_loss_that_needs_a_reference_is_refused_without_one()
    {
        using var policy = Policy();
        Assert.Contains("reference", Assert.Throws<ArgumentException>(() => new PreferenceTrainer(policy, PreferenceLosses.Dpo(), Options())).Message);
        Assert.Contains("learning_rate", Assert.Throws<ArgumentException>(() => new TrainingOptions { LearningRate = -1 }.Validate()).Message);
    }

    [Fact]
    public void Kto_on_unpaired_data_reduces_its_loss()
    {
        using var policy = Policy();
        using ReferenceModel reference = policy.CreateReference();
        var examples = PreferenceFormats.ToUnpaired([]).Select(_ => (TokenizedCompletion)null!).ToList();
        examples = Pairs(8).SelectMany(p => new[]
        {
            new TokenizedCompletion(p.Prompt, p.Chosen, true, p.Source),
            new TokenizedCompletion(p.Prompt, p.Rejected, false, p.Source),
        }).ToList();
        TrainingResult result = new PreferenceTrainer(policy, PreferenceLosses.Kto(beta: 0.1), Options(steps: 25), reference).Train(examples);
        Assert.True(result.History[^1]["loss"] < result.History[0]["loss"], $"{result.History[0]["loss"]} → {result.History[^1]["loss"]}");
        Assert.Contains("kl", result.History[^1].Keys);
    }
}

public sealed class EvaluationAverageTests
{
    [Fact]
    public void Evaluation_averages_over_examples_not_over_batches()
    {
        using var policy = PreferenceTrainerTests.Policy();
        using ReferenceModel reference = policy.CreateReference();
        using (TorchSharp.torch.no_grad())
            policy.Model.parameters().First().add_(0.05); // the policy differs from the reference: accuracies vary by pair
        var pairs = PreferenceTrainerTests.Pairs(12);
        var one = new PreferenceTrainer(policy, PreferenceLosses.Dpo(), PreferenceTrainerTests.Options() with { BatchSize = 1 }, reference);
        var eight = new PreferenceTrainer(policy, PreferenceLosses.Dpo(), PreferenceTrainerTests.Options() with { BatchSize = 8 }, reference);

        // Batches of one give each pair's own values; batches of 8 and 4 must average to the same per-pair mean.
        var single = pairs.Select(p => one.Evaluate([p])).ToList();
        var batched = eight.Evaluate(pairs);
        foreach (string metric in new[] { "loss", "rewards/accuracies", "rewards/margins" })
            Assert.Equal(single.Average(m => m[metric]), batched[metric], 5);
    }
}

public sealed class NonFiniteWeightTests
{
    [Fact]
    public void A_nan_loss_from_a_nan_weight_names_the_weight_not_the_data()
    {
        using var policy = PreferenceTrainerTests.Policy();
        using ReferenceModel reference = policy.CreateReference();
        var (name, parameter) = policy.Model.named_parameters().First(p => p.name.EndsWith("mlp.up_proj.weight", StringComparison.Ordinal));
        using (TorchSharp.torch.no_grad())
            parameter.fill_(double.NaN);
        var error = Assert.Throws<NonFiniteLossException>(() =>
            new PreferenceTrainer(policy, PreferenceLosses.Dpo(), PreferenceTrainerTests.Options(steps: 1), reference).Train(PreferenceTrainerTests.Pairs(4)));
        Assert.Contains($"'{name}'", error.Message);
        Assert.DoesNotContain("pairs.jsonl", error.Message);
    }
}
