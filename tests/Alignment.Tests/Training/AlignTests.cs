using Alignment.Data;
using Alignment.Losses;
using Alignment.Models;
using Alignment.Rl;
using Alignment.Scoring;
using Alignment.Tests.Models;
using Alignment.Tests.Tokenization;
using Alignment.Tokenization;
using Alignment.Training;

namespace Alignment.Tests.Training;

/// <summary>The front door is thin sugar: every run it builds equals the trainer constructed by hand with the same options.</summary>
public sealed class AlignTests : IDisposable
{
    readonly TinyTokenizers _tokenizers = new();

    public void Dispose() => _tokenizers.Dispose();

    static readonly SourceLocation Here = new("x.jsonl", 1);
    static List<TokenizedPair> Pairs(int n) => Enumerable.Range(0, n).Select(i => new TokenizedPair([1, 3 + i], [10 + i, 2], [40, 2], Here)).ToList();
    static List<TokenizedCompletion> Completions(int n) =>
        Enumerable.Range(0, n).Select(i => new TokenizedCompletion([1, 3 + i], [10 + i, 2], i % 2 == 0, Here)).ToList();
    static PolicyModel Policy(int vocab = 64) { var json = TinyModels.ConfigJson(); json["vocab_size"] = vocab; return new(TinyModels.Random(json, 7)); }
    static double[] Losses(TrainingResult result) => result.History.Select(h => h["loss"]).ToArray();

    static TrainingOptions Expected(TrainingOptions defaults) =>
        defaults with { LearningRate = 1e-3, BatchSize = 2, MaxSteps = 3, Seed = 5, Schedule = LearningRateSchedule.Constant };

    static AlignmentBuilder Configure(AlignmentBuilder builder) =>
        builder.Optimizer(lr: 1e-3, schedule: LearningRateSchedule.Constant).Batch(size: 2).Duration(maxSteps: 3).Seed(5);

    [Fact]
    public void Sft_through_the_front_door_equals_the_sft_trainer()
    {
        double[] direct, built;
        using (var policy = Policy())
            direct = Losses(new SftTrainer(policy, Expected(SftTrainer.DefaultOptions)).Train(Completions(6)));
        using (var policy = Policy())
            built = Losses(Configure(Align.Policy(policy).Sft(Completions(6))).Build().Train());
        Assert.Equal(direct, built);
    }

    [Fact]
    public void Paired_and_unpaired_preference_training_through_the_front_door_equal_the_preference_trainer()
    {
        double[] direct, built, kto, ktoBuilt;
        using (var policy = Policy())
        using (var reference = policy.CreateReference())
        {
            direct = Losses(new PreferenceTrainer(policy, PreferenceLosses.Dpo(), Expected(PreferenceTrainer.DefaultOptions), reference).Train(Pairs(6)));
        }
        using (var policy = Policy())
        using (var reference = policy.CreateReference())
            built = Losses(Configure(Align.Policy(policy).Reference(reference).Loss(PreferenceLosses.Dpo()).Data(Pairs(6))).Build().Train());
        using (var policy = Policy())
        using (var reference = policy.CreateReference())
            kto = Losses(new PreferenceTrainer(policy, PreferenceLosses.Kto(), Expected(PreferenceTrainer.DefaultOptions), reference).Train(Completions(6)));
        using (var policy = Policy())
        using (var reference = policy.CreateReference())
            ktoBuilt = Losses(Configure(Align.Policy(policy).Reference(reference).Loss(PreferenceLosses.Kto()).Data(Completions(6))).Build().Train());
        Assert.Equal(direct, built);
        Assert.Equal(kto, ktoBuilt);
    }

    [Fact]
    public void Reward_modelling_through_the_front_door_equals_the_reward_trainer()
    {
        double[] direct, built;
        using (var model = new RewardModel(TinyModels.Random(TinyModels.ConfigJson(), 3), new ScalarHead(32, generator: new TorchSharp.torch.Generator(1))))
            direct = Losses(new RewardTrainer(model, Expected(RewardTrainer.DefaultOptions)).Train(Pairs(6)));
        using (var model = new RewardModel(TinyModels.Random(TinyModels.ConfigJson(), 3), new ScalarHead(32, generator: new TorchSharp.torch.Generator(1))))
            built = Losses(Configure(Align.RewardModel(model).Data(Pairs(6))).Build().Train());
        Assert.Equal(direct, built);
    }

    [Fact]
    public void Rollouts_through_the_front_door_equal_the_ppo_loop_and_evaluate_on_held_out_prompts()
    {
        var tokenizer = ModelTokenizer.FromFolder(_tokenizers.Folder("tok"));
        var reward = new DelegateReward((_, c) => c.Count(char.IsLower));
        string[] prompts = ["hello", "the world", "world", "hello the"];
        var rl = new PpoOptions { Algorithm = RlAlgorithm.Grpo, NumGenerations = 2, ResponseLength = 4, PpoEpochs = 1 };
        TrainingResult direct, built;
        using (var policy = Policy(300))
        using (var reference = policy.CreateReference())
            direct = new PpoLoop(policy, reference, reward, tokenizer, null, rl with { Training = Expected(PpoOptions.DefaultTraining) }).Train(prompts, ["say"]);
        using (var policy = Policy(300))
        using (var reference = policy.CreateReference())
            built = Configure(Align.Policy(policy).Reference(reference).Rollouts(reward, tokenizer, prompts, rl, eval: ["say"])).Build().Train();
        Assert.Equal(direct.History.Select(h => h.GetValueOrDefault("objective/scores")), built.History.Select(h => h.GetValueOrDefault("objective/scores")));
        Assert.Contains(built.History, h => h.ContainsKey("eval_objective/scores") && h.ContainsKey("eval_objective/kl"));
    }

    [Fact]
    public void Rollouts_with_reward_functions_and_beta_0_need_no_reference()
    {
        var tokenizer = ModelTokenizer.FromFolder(_tokenizers.Folder("tok"));
        IRewardFunction[] rewards = [RewardFunction.From("lower", s => s.Completion.Count(char.IsLower)), RewardFunction.Accuracy()];
        PromptExample[] prompts = [new("hello", ("solution", "h")), new("world", ("solution", "w"))];
        var rl = new PpoOptions { Algorithm = RlAlgorithm.Grpo, NumGenerations = 2, ResponseLength = 4, PpoEpochs = 1, KlCoef = 0, RewardWeights = [1, 2] };
        using var policy = Policy(300);
        var history = Configure(Align.Policy(policy).Rollouts(rewards, tokenizer, prompts, rl)).Build().Train().History;
        Assert.Contains("rewards/accuracy_reward/mean", history[^1].Keys);
        Assert.All(history, h => Assert.Equal(0, h["objective/kl"]));
        var error = Assert.Throws<InvalidOperationException>(() => Configure(Align.Policy(policy).Rollouts(rewards, tokenizer, prompts, rl with { KlCoef = 0.1 })).Build());
        Assert.Contains("Reference(", error.Message);
    }

    [Fact]
    public void Build_says_what_is_missing()
    {
        using var policy = Policy();
        Assert.Contains("Data(", Assert.Throws<InvalidOperationException>(() => Align.Policy(policy).Build()).Message);
        Assert.Contains("Loss(", Assert.Throws<InvalidOperationException>(() => Align.Policy(policy).Data(Pairs(2)).Build()).Message);
        Assert.Contains("reference", Assert.Throws<ArgumentException>(() => Align.Policy(policy).Loss(PreferenceLosses.Dpo()).Data(Pairs(2)).Build()).Message);
    }
}
