using Alignment.Data;
using Alignment.Models;
using Alignment.Tests.Models;
using Alignment.Training;
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
    public void The_reward_trainer_learns_to_rank_chosen_above_rejected_and_the_model_reloads()
    {
        using var reward = new RewardModel(TinyModels.Random(TinyModels.ConfigJson()), new ScalarHead(32, generator: new Generator(3)));
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
    }
}
