using Alignment.Data;
using Alignment.Models;
using Alignment.Tests.Models;
using Alignment.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Tests.Training;

public sealed class SftAndRewardTrainerTests : IDisposable
{
    readonly TinyModels _models = new();

    public void Dispose() => _models.Dispose();

    static List<TokenizedCompletion> Completions(int count)
    {
        var random = new Random(4);
        return Enumerable.Range(0, count).Select(i =>
        {
            int start = random.Next(3, 50);
            int[] prompt = Enumerable.Range(0, 1 + i % 3).Select(_ => random.Next(3, 60)).ToArray();
            return new TokenizedCompletion(prompt, [start, start + 1, start + 2, start + 3, 2], true, new SourceLocation("sft.jsonl", i + 1));
        }).ToList();
    }

    static TrainingOptions Options(int steps) => new() { LearningRate = 3e-3, BatchSize = 4, MaxSteps = steps, Schedule = LearningRateSchedule.Constant };

    [Fact]
    public void Sft_reduces_the_completion_loss()
    {
        using var policy = new PolicyModel(TinyModels.Random(TinyModels.ConfigJson()));
        var data = Completions(8);
        var trainer = new SftTrainer(policy, Options(30));
        double before = trainer.Evaluate(data)["loss"];
        trainer.Train(data);
        double after = trainer.Evaluate(data)["loss"];
        Assert.True(after < before * 0.7, $"{before} → {after}");
    }

    /// <summary>Completions of 1 to 6 tokens: micro-batches of unequal token counts.</summary>
    static List<TokenizedCompletion> UnequalCompletions(int count) =>
        [.. Enumerable.Range(0, count).Select(i => new TokenizedCompletion([1, 3 + i], [.. Enumerable.Range(10 + i, 1 + i * 5 % 6)], true, new SourceLocation("sft.jsonl", i + 1)))];

    [Fact]
    public void Accumulated_micro_batches_take_the_token_mean_of_the_whole_batch()
    {
        var data = UnequalCompletions(4);
        // float64: AdamW's first update, lr·g/(|g| + ε), turns float32 rounding of gradients near ε into visible differences
        using var accumulated = new PolicyModel(Float64(TinyModels.Random(TinyModels.ConfigJson())));
        using var whole = new PolicyModel(Float64(TinyModels.Random(TinyModels.ConfigJson())));
        var split = new SftTrainer(accumulated, Options(1) with { BatchSize = 2, GradientAccumulationSteps = 2 }).Train(data).History[0];
        var one = new SftTrainer(whole, Options(1)).Train(data).History[0];

        Assert.Equal(data.Sum(e => e.Completion.Length), one["num_tokens"]);
        Assert.Equal(one["num_tokens"], split["num_tokens"]);
        Assert.Equal(one["loss"], split["loss"], 5);
        foreach (var ((name, a), (_, b)) in accumulated.Model.named_parameters().Zip(whole.Model.named_parameters()))
        {
            double difference = a.sub(b).abs().max().item<double>(), scale = a.abs().max().item<double>();
            Assert.True(difference <= 1e-5 * scale, $"{name}: {difference} apart");
        }
    }

    static LlamaForCausalLM Float64(LlamaForCausalLM model)
    {
        model.to(ScalarType.Float64);
        return model;
    }

    [Fact]
    public void A_checkpoint_resumes_with_another_split_of_the_same_global_batch_only()
    {
        string output = Path.Combine(_models.Root, "split");
        var data = UnequalCompletions(8);
        using var policy = new PolicyModel(TinyModels.Random(TinyModels.ConfigJson()));
        new SftTrainer(policy, Options(2) with { BatchSize = 2, GradientAccumulationSteps = 2, OutputDir = output }).Train(data);

        TrainingResult resumed = new SftTrainer(policy, Options(2) with { OutputDir = output }).Train(data, resume: true);
        Assert.Equal(2, resumed.Steps);
        var error = Assert.Throws<ArgumentException>(() =>
            new SftTrainer(policy, Options(2) with { GradientAccumulationSteps = 2, OutputDir = output }).Train(data, resume: true));
        Assert.Contains("total_train_batch_size: 4 → 8", error.Message);
    }

    [Fact]
    public void Packed_and_padded_batches_give_the_same_sft_loss()
    {
        using var policy = new PolicyModel(TinyModels.Random(TinyModels.ConfigJson()));
        var data = Completions(6);
        var padded = new SftTrainer(policy, Options(1) with { BatchSize = 6 }).Evaluate(data)["loss"];
        var packed = new SftTrainer(policy, Options(1) with { BatchSize = 6 }, packing: true).Evaluate(data)["loss"];
        Assert.Equal(padded, packed, 5);
    }

    [Fact]
    public void A_reward_model_from_a_causal_lm_with_a_seed_gets_the_same_head_every_time()
    {
        string folder = _models.Folder("base", TinyModels.ConfigJson());
        using RewardModel a = RewardModel.FromCausalLM(folder, seed: 3), b = RewardModel.FromCausalLM(folder, seed: 3), c = RewardModel.FromCausalLM(folder, seed: 4);
        Assert.Equal(a.Head.Weight.data<float>().ToArray(), b.Head.Weight.data<float>().ToArray());
        Assert.NotEqual(a.Head.Weight.data<float>().ToArray(), c.Head.Weight.data<float>().ToArray());
    }

    [Theory]
    [InlineData("llama", "LlamaForSequenceClassification")]
    [InlineData("gpt2", "GPT2ForSequenceClassification")]
    [InlineData("gemma2", "Gemma2ForSequenceClassification")]
    [InlineData("phi3", "Phi3ForSequenceClassification")]
    public void The_reward_trainer_learns_to_rank_chosen_above_rejected_and_the_model_reloads(string family, string architecture)
    {
        using var reward = new RewardModel(TinyModels.Random(LlamaForCausalLMTests.ConfigFor(family)), new ScalarHead(32, generator: new Generator(3)));
        var random = new Random(2);
        var pairs = Enumerable.Range(0, 8).Select(i =>
        {
            int[] prompt = [1, random.Next(3, 60)];
            return new TokenizedPair(prompt, [10, 11, 12], [40, 40, 40], new SourceLocation("rm.jsonl", i + 1));
        }).ToList();
        var trainer = new RewardTrainer(reward, Options(30), centerRewardsCoefficient: 0.01);
        trainer.Train(pairs);
        var metrics = trainer.Evaluate(pairs);
        Assert.True(metrics["accuracy"] > 0.9, $"accuracy {metrics["accuracy"]}");

        string folder = Path.Combine(_models.Root, "rm");
        reward.SavePretrained(folder);
        using var reloaded = RewardModel.FromPretrained(folder);
        using var scope = NewDisposeScope();
        Tensor ids = tensor(new long[] { 1, 5, 10, 11, 12 }).unsqueeze(0), mask = ones_like(ids);
        Assert.Equal(reward.Score(ids, mask).item<float>(), reloaded.Score(ids, mask).item<float>(), 5);
        using var checkpoint = SafeTensorsCheckpoint.Open(folder);
        Assert.Contains("score.weight", checkpoint.Entries.Keys);
        Assert.DoesNotContain("lm_head.weight", checkpoint.Entries.Keys);
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!;
        Assert.Equal(architecture, config["architectures"]![0]!.GetValue<string>());
        Assert.Equal(family, config["model_type"]!.GetValue<string>());
    }
}
