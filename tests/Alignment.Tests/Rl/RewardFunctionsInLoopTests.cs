using Alignment.Data;
using Alignment.Models;
using Alignment.Rl;
using Alignment.Scoring;
using Alignment.Tests.Models;
using Alignment.Tests.Tokenization;
using Alignment.Tokenization;

namespace Alignment.Tests.Rl;

public sealed class RewardFunctionsInLoopTests : IDisposable
{
    readonly TinyTokenizers _tokenizers = new();

    public void Dispose() => _tokenizers.Dispose();

    static readonly PromptExample[] Prompts =
    [
        new("hello", ("solution", "h")), new("world", ("solution", "w")), new("skip", ("solution", "s")), new("say", ("solution", "y")),
        new("text", ("solution", "t")), new("more", ("solution", "m")),
    ];

    /// <summary>A reward function that records every batch it scores; both abstain on the prompt "skip", making it unscorable.</summary>
    sealed class Recorder(string name, Func<RewardSample, double> score) : IRewardFunction
    {
        public List<IReadOnlyList<RewardSample>> Calls { get; } = [];
        public string Name => name;

        public IReadOnlyList<double?> Score(IReadOnlyList<RewardSample> samples)
        {
            Calls.Add(samples);
            return samples.Select(s => s.Prompt == "skip" ? null : (double?)score(s)).ToList();
        }
    }

    (PolicyModel Policy, ModelTokenizer Tokenizer) Setup()
    {
        var json = TinyModels.ConfigJson();
        json["vocab_size"] = 300;
        return (new PolicyModel(TinyModels.Random(json, seed: 5)), ModelTokenizer.FromFolder(_tokenizers.Folder("tok")));
    }

    static double Std(IReadOnlyList<double> x) => Math.Sqrt(x.Sum(v => (v - x.Average()) * (v - x.Average())) / (x.Count - 1));

    [Fact]
    public void Grpo_sums_weighted_reward_functions_that_see_the_dataset_columns_and_logs_each()
    {
        var (policy, tokenizer) = Setup();
        using (policy)
        {
            var length = new Recorder("length", s => s.CompletionIds.Count % 3);
            var letter = new Recorder("letter", s => s.Completion.Contains(s.Column("solution")!, StringComparison.Ordinal) ? 1 : 0);
            var history = new PpoLoop(policy, null, [length, letter], tokenizer, null, new PpoOptions
            {
                Algorithm = RlAlgorithm.Grpo, Training = PpoOptions.DefaultTraining with { MaxSteps = 3, BatchSize = 3, LearningRate = 1e-3, Seed = 4 },
                NumGenerations = 4, ResponseLength = 5, KlCoef = 0, Temperature = 1.0, RewardWeights = [2, 0.5],
            }).Train(Prompts).History;

            Assert.Equal(3, length.Calls.Count);
            for (int step = 0; step < 3; step++)
            {
                var samples = length.Calls[step];
                Assert.Same(samples, letter.Calls[step]);
                Assert.All(samples, s => Assert.Equal(Prompts.Single(p => p.Prompt == s.Prompt).Columns["solution"]!.GetValue<string>(), s.Column("solution")));
                var scored = samples.Where(s => s.Prompt != "skip").ToList();
                double[] a = [.. scored.Select(s => (double)(s.CompletionIds.Count % 3))];
                double[] b = [.. scored.Select(s => s.Completion.Contains(s.Column("solution")!, StringComparison.Ordinal) ? 1.0 : 0.0)];
                double[] total = [.. a.Select((x, i) => 2 * x + 0.5 * b[i])];
                var metrics = history[step];
                Assert.Equal(a.Average(), metrics["rewards/length/mean"], 12);
                Assert.Equal(Std(a), metrics["rewards/length/std"], 12);
                Assert.Equal(b.Average(), metrics["rewards/letter/mean"], 12);
                Assert.Equal(total.Average(), metrics["reward"], 12);
                Assert.Equal(Std(total), metrics["reward_std"], 12);
                Assert.Equal(total.Average(), metrics["objective/scores"], 12);
                var groups = samples.Chunk(4).Where(g => g[0].Prompt != "skip").Select(g => g.Select(s => 2.0 * (s.CompletionIds.Count % 3)
                    + 0.5 * (s.Completion.Contains(s.Column("solution")!, StringComparison.Ordinal) ? 1 : 0)).ToArray()).ToList();
                Assert.Equal(groups.Count(g => g.All(x => x == g[0])) / (samples.Count / 4.0), metrics["frac_reward_zero_std"], 12);
                Assert.All(metrics.Values, v => Assert.True(double.IsFinite(v)));
            }
            Assert.Contains(length.Calls, call => call.Any(s => s.Prompt == "skip")); // the unscorable prompt was drawn
        }
    }

    [Fact]
    public void Ppo_leaves_unscorable_completions_out_of_its_loss()
    {
        var (policy, tokenizer) = Setup();
        using (policy)
        using (ReferenceModel reference = policy.CreateReference())
        {
            var history = new PpoLoop(policy, reference, [new Recorder("length", s => s.CompletionIds.Count)], tokenizer, null, new PpoOptions
            {
                Training = PpoOptions.DefaultTraining with { MaxSteps = 2, BatchSize = 6, LearningRate = 1e-3, Seed = 4 }, ResponseLength = 4,
            }).Train(Prompts).History;
            Assert.All(history, metrics => Assert.All(metrics.Values, v => Assert.True(double.IsFinite(v))));
        }
    }

    [Fact]
    public void Reward_functions_are_checked_against_their_weights_and_names()
    {
        var (policy, tokenizer) = Setup();
        using (policy)
        {
            var options = new PpoOptions { Algorithm = RlAlgorithm.Grpo, KlCoef = 0, RewardWeights = [1, 2] };
            var count = Assert.Throws<ArgumentException>(() => new PpoLoop(policy, null, [RewardFunction.ThinkFormat()], tokenizer, null, options));
            Assert.Contains("reward_weights has 2 values for 1 reward functions (think_format_reward)", count.Message);
            var twice = Assert.Throws<ArgumentException>(() => new PpoLoop(policy, null, [RewardFunction.ThinkFormat(), RewardFunction.ThinkFormat()], tokenizer, null, options));
            Assert.Contains("'think_format_reward'", twice.Message);
            Assert.Throws<ArgumentException>(() => new PpoLoop(policy, null, [], tokenizer, null, options with { RewardWeights = null }));
        }
    }
}
