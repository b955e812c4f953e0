using Alignment.Models;
using Alignment.Rl;
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
                Iterations = 60, PromptsPerIteration = 16, ResponseLength = 12, LearningRate = 1e-2, KlCoef = 0.05, PpoEpochs = 4,
                Temperature = 1.0, Seed = 3,
            });
            var history = loop.Train(Prompts);

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
    [InlineData(RlAlgorithm.Grpo)]
    [InlineData(RlAlgorithm.Rloo)]
    public void Grpo_and_rloo_raise_the_reward_without_a_value_model(RlAlgorithm algorithm)
    {
        var (policy, tokenizer) = Setup();
        using (policy)
        using (ReferenceModel reference = policy.CreateReference())
        {
            var history = new PpoLoop(policy, reference, ShareOfA, tokenizer, null, new PpoOptions
            {
                Algorithm = algorithm, Iterations = 25, PromptsPerIteration = 8, NumGenerations = 4, ResponseLength = 12, LearningRate = 1e-2,
                KlCoef = 0.01, PpoEpochs = 2, Temperature = 1.0, Seed = 3,
            }).Train(Prompts);
            double first = history.Take(5).Average(h => h["objective/scores"]);
            double last = history.TakeLast(5).Average(h => h["objective/scores"]);
            Assert.True(last > first + 0.15, $"{algorithm}: mean reward {first:F3} → {last:F3}");
            Assert.DoesNotContain("loss/value_avg", history[^1].Keys);
        }
    }
}
