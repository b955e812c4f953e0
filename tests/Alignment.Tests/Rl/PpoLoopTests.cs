using Alignment.Models;
using Alignment.Rl;
using Alignment.Scoring;
using Alignment.Training;
using Alignment.Tests.Models;
using Alignment.Tests.Tokenization;
using Alignment.Tokenization;

namespace Alignment.Tests.Rl;

public sealed class PpoLoopTests : IDisposable
{
    readonly TinyTokenizers _tokenizers = new();

    public void Dispose() => _tokenizers.Dispose();

    /// <summary>
    /// The reward: the share of chosen tokens (the 26 lowercase letters) among the completion's characters. A random
    /// byte-level model emits them about one time in ten: dense enough to learn from in a few dozen iterations.
    /// </summary>
    static readonly DelegateReward ShareOfA = new((_, completion) => completion.Length == 0 ? 0 : completion.Count(c => c is >= 'a' and <= 'z') / (double)completion.Length);

    static readonly string[] Prompts = ["hello", "the world", "hello the", "world", "say", "more", "text", "again"];

    (PolicyModel Policy, ModelTokenizer Tokenizer) Setup()
    {
        var json = TinyModels.ConfigJson();
        json["vocab_size"] = 300;
        return (new PolicyModel(TinyModels.Random(json, seed: 5)), ModelTokenizer.FromFolder(_tokenizers.Folder("tok")));
    }

    [Fact]
    public void Ppo_raises_a_programmatic_reward_while_the_kl_to_the_reference_stays_bounded()
    {
        var (policy, tokenizer) = Setup();
        using (policy)
        using (ReferenceModel reference = policy.CreateReference())
        {
            var loop = new PpoLoop(policy, reference, ShareOfA, tokenizer, null, new PpoOptions
            {
                Training = PpoOptions.DefaultTraining with { MaxSteps = 60, BatchSize = 16, LearningRate = 1e-2, Seed = 3 },
                ResponseLength = 12, KlCoef = 0.05, PpoEpochs = 4, Temperature = 1.0,
            });
            var history = loop.Train(Prompts).History;

            double first = history.Take(5).Average(h => h["objective/scores"]);
            double last = history.TakeLast(5).Average(h => h["objective/scores"]);
            Assert.True(last > first + 0.15 && last > 1.5 * first, $"mean reward {first:F3} → {last:F3}");
            Assert.True(history.Max(h => h["objective/kl"]) < 20, $"KL up to {history.Max(h => h["objective/kl"])}"); // nats per sequence
            foreach (string key in new[] { "objective/kl", "objective/entropy", "objective/non_score_reward", "objective/rlhf_reward", "objective/scores",
                         "policy/approxkl_avg", "policy/clipfrac_avg", "loss/policy_avg", "loss/value_avg", "val/clipfrac_avg", "val/ratio" })
                Assert.Contains(key, history[^1].Keys);
        }
    }

    [Theory]
    [InlineData(RlAlgorithm.Grpo, GrpoLossType.Dapo)]
    [InlineData(RlAlgorithm.Grpo, GrpoLossType.DrGrpo)]
    [InlineData(RlAlgorithm.Rloo, GrpoLossType.Dapo)]
    public void Grpo_and_rloo_raise_the_reward_without_a_value_model(RlAlgorithm algorithm, GrpoLossType lossType)
    {
        var (policy, tokenizer) = Setup();
        using (policy)
        using (ReferenceModel reference = policy.CreateReference())
        {
            var history = new PpoLoop(policy, reference, ShareOfA, tokenizer, null, new PpoOptions
            {
                Algorithm = algorithm, Training = PpoOptions.DefaultTraining with { MaxSteps = 25, BatchSize = 8, LearningRate = 1e-2, Seed = 3 },
                NumGenerations = 4, ResponseLength = 12, KlCoef = 0.01, PpoEpochs = 2, Temperature = 1.0, LossType = lossType, EpsilonHigh = 0.28,
            }).Train(Prompts).History;
            double first = history.Take(5).Average(h => h["objective/scores"]);
            double last = history.TakeLast(5).Average(h => h["objective/scores"]);
            Assert.True(last > first + 0.15, $"{algorithm} {lossType}: mean reward {first:F3} → {last:F3}");
            Assert.DoesNotContain("loss/value_avg", history[^1].Keys);
            foreach (string key in new[] { "reward", "reward_std", "frac_reward_zero_std", "completions/mean_length", "completions/clipped_ratio",
                         "clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean" })
                Assert.Contains(key, history[^1].Keys);
            Assert.Equal(history[^1]["objective/scores"], history[^1]["reward"], 10);
        }
    }
}

public sealed class GrpoWithoutReferenceTests : IDisposable
{
    readonly TinyTokenizers _tokenizers = new();

    public void Dispose() => _tokenizers.Dispose();

    [Fact]
    public void With_beta_0_grpo_needs_no_reference_and_its_kl_reads_0()
    {
        var json = TinyModels.ConfigJson();
        json["vocab_size"] = 300;
        using var policy = new PolicyModel(TinyModels.Random(json, seed: 5));
        var tokenizer = ModelTokenizer.FromFolder(_tokenizers.Folder("tok"));
        var reward = new DelegateReward((_, completion) => completion.Count(c => c is >= 'a' and <= 'z') / (double)Math.Max(1, completion.Length));
        var options = new PpoOptions
        {
            Algorithm = RlAlgorithm.Grpo, Training = PpoOptions.DefaultTraining with { MaxSteps = 3, BatchSize = 4, LearningRate = 1e-2, Seed = 3 },
            NumGenerations = 4, ResponseLength = 6, KlCoef = 0, Temperature = 1.0,
        };
        var history = new PpoLoop(policy, null, reward, tokenizer, null, options).Train(["hello", "world", "the", "say"]).History;
        Assert.All(history, step => Assert.Equal(0, step["objective/kl"]));

        var error = Assert.Throws<ArgumentException>(() => new PpoLoop(policy, null, reward, tokenizer, null, options with { KlCoef = 0.05 }));
        Assert.Contains("kl_coef", error.Message);
    }
}

public sealed class PpoCheckpointTests : IDisposable
{
    readonly TinyTokenizers _tokenizers = new();
    readonly string _folder = Directory.CreateTempSubdirectory("alignment-ppo-").FullName;

    public void Dispose()
    {
        _tokenizers.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    static readonly DelegateReward Letters = new((_, c) => c.Length == 0 ? 0 : c.Count(ch => ch is >= 'a' and <= 'z') / (double)c.Length);
    static readonly string[] Prompts = ["hello", "the world", "hello the", "world"];

    PolicyModel Policy()
    {
        var json = TinyModels.ConfigJson();
        json["vocab_size"] = 300;
        return new PolicyModel(TinyModels.Random(json, seed: 5));
    }

    static PpoOptions Options(string? output) => new()
    {
        Training = PpoOptions.DefaultTraining with { MaxSteps = 4, BatchSize = 4, LearningRate = 5e-3, Seed = 9, OutputDir = output, SaveSteps = 1 },
        ResponseLength = 6, PpoEpochs = 2, Temperature = 1.0,
    };

    sealed class SynchronousProgress(Action<TrainingProgress> action) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => action(value);
    }

    [Fact]
    public void A_resumed_ppo_run_matches_a_straight_one()
    {
        var tokenizer = ModelTokenizer.FromFolder(_tokenizers.Folder("tok"));
        double[] Scores(IEnumerable<IReadOnlyDictionary<string, double>> history) => history.Select(h => h["objective/scores"]).ToArray();

        IReadOnlyList<IReadOnlyDictionary<string, double>> straight;
        using (var policy = Policy())
        using (var reference = policy.CreateReference())
            straight = new PpoLoop(policy, reference, Letters, tokenizer, null, Options(Path.Combine(_folder, "straight"))).Train(Prompts).History;

        string interrupted = Path.Combine(_folder, "interrupted");
        using (var policy = Policy())
        using (var reference = policy.CreateReference())
        {
            using var cancel = new CancellationTokenSource();
            var progress = new ProgressCallback(new SynchronousProgress(p => { if (p.Step == 2) cancel.Cancel(); }));
            Assert.Equal(2, new PpoLoop(policy, reference, Letters, tokenizer, null, Options(interrupted), callbacks: [progress])
                .Train(Prompts, cancellationToken: cancel.Token).History.Count);
        }
        IReadOnlyList<IReadOnlyDictionary<string, double>> resumed;
        using (var policy = Policy())
        using (var reference = policy.CreateReference())
            resumed = new PpoLoop(policy, reference, Letters, tokenizer, null, Options(interrupted)).Train(Prompts, resume: true).History;

        Assert.Equal(4, resumed.Count); // the engine's history includes the two steps before the resume
        Assert.Equal(Scores(straight).Skip(2), Scores(resumed).Skip(2));
        Assert.Equal(4, File.ReadAllLines(Path.Combine(interrupted, "metrics.jsonl")).Length);
    }

    [Fact]
    public void Completions_without_eos_are_penalised()
    {
        var tokenizer = ModelTokenizer.FromFolder(_tokenizers.Folder("tok"));
        using var policy = Policy();
        using var reference = policy.CreateReference();
        var options = Options(null) with { PpoEpochs = 1 };
        options = options with { Training = options.Training with { MaxSteps = 1 } };
        double plain = new PpoLoop(policy, reference, new DelegateReward((_, _) => 1.0), tokenizer, null, options).Train(Prompts).History[0]["objective/scores"];
        double penalised = new PpoLoop(policy, reference, new DelegateReward((_, _) => 1.0), tokenizer, null, options with { MissingEosPenalty = 2 })
            .Train(Prompts).History[0]["objective/scores"];
        Assert.Equal(1.0, plain);
        Assert.True(penalised < 1.0, $"{penalised}"); // six random tokens almost never end with the EOS token
    }

    sealed class RatingClient(string answer) : Microsoft.Extensions.AI.IChatClient
    {
        public Task<Microsoft.Extensions.AI.ChatResponse> GetResponseAsync(IEnumerable<Microsoft.Extensions.AI.ChatMessage> messages,
            Microsoft.Extensions.AI.ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            Task.FromResult(new Microsoft.Extensions.AI.ChatResponse(new Microsoft.Extensions.AI.ChatMessage(Microsoft.Extensions.AI.ChatRole.Assistant, answer)));
        public IAsyncEnumerable<Microsoft.Extensions.AI.ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<Microsoft.Extensions.AI.ChatMessage> messages,
            Microsoft.Extensions.AI.ChatOptions? options = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public object? GetService(Type serviceType, object? serviceKey = null) => null;
        public void Dispose() { }
    }

    [Fact]
    public void Gradient_accumulation_over_minibatches_trains_and_logs_to_tensorboard()
    {
        var tokenizer = ModelTokenizer.FromFolder(_tokenizers.Folder("tok"));
        using var policy = Policy();
        using var reference = policy.CreateReference();
        var before = policy.Model.parameters().First().detach().clone();
        var options = Options(null) with { PpoEpochs = 1, MiniBatches = 2 };
        options = options with { Training = options.Training with { MaxSteps = 2, GradientAccumulationSteps = 2, TensorBoardDir = Path.Combine(_folder, "board") } };
        var history = new PpoLoop(policy, reference, Letters, tokenizer, null, options).Train(Prompts).History;
        Assert.All(history, h => Assert.True(double.IsFinite(h["loss/policy_avg"])));
        Assert.False(policy.Model.parameters().First().equal(before).all().item<bool>()); // the accumulated step was taken
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(_folder, "board"), "events.out.tfevents*", SearchOption.AllDirectories));
    }

    [Theory]
    [InlineData("7", 0.7)]
    [InlineData("I would say 8.5 out of 10", 0.85)]
    [InlineData("excellent!", 0.0)]
    [InlineData("42", 1.0)]
    public void A_judge_rating_becomes_a_reward_in_zero_one(string answer, double expected) =>
        Assert.Equal(expected, new JudgeReward(new RatingClient(answer)).Score(["p"], ["c"])[0], 12);
}
