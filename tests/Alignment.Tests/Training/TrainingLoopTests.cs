using System.Text.Json.Nodes;
using Alignment.Data;
using Alignment.Losses;
using Alignment.Models;
using Alignment.Tests.Models;
using Alignment.Training;
using static TorchSharp.torch;

namespace Alignment.Tests.Training;

public sealed class TrainingLoopTests : IDisposable
{
    readonly TinyModels _models = new();

    public void Dispose() => _models.Dispose();

    static readonly SourceLocation Here = new("x.jsonl", 1);
    static List<TokenizedPair> Pairs(int n) => Enumerable.Range(0, n).Select(i => new TokenizedPair([1, 3 + i], [10 + i, 2], [40, 2], Here)).ToList();

    [Fact]
    public void Checkpoints_are_written_at_each_epoch_end_with_the_configuration()
    {
        using var policy = new PolicyModel(TinyModels.Random(TinyModels.ConfigJson()));
        using ReferenceModel reference = policy.CreateReference();
        string output = Path.Combine(_models.Root, "epochs");
        // 6 pairs, 2 per step: an epoch is 3 steps; 2 epochs = 6 steps.
        new PreferenceTrainer(policy, PreferenceLosses.Dpo(), new TrainingOptions { LearningRate = 1e-3, BatchSize = 2, Epochs = 2, OutputDir = output }, reference)
            .Train(Pairs(6));
        Assert.True(Directory.Exists(Path.Combine(output, "checkpoint-3")));
        Assert.True(Directory.Exists(Path.Combine(output, "checkpoint-6")));
        var state = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "checkpoint-3", "trainer_state.json")))!;
        Assert.Equal(3, state["global_step"]!.GetValue<int>());
        Assert.Equal(0.001, state["config"]!["learning_rate"]!.GetValue<double>());
        Assert.Equal(3, state["log_history"]!.AsArray().Count);
    }

    [Fact]
    public void Evaluation_runs_every_n_steps_and_early_stopping_ends_a_run_that_stops_improving()
    {
        using var policy = new PolicyModel(TinyModels.Random(TinyModels.ConfigJson()));
        using ReferenceModel reference = policy.CreateReference();
        var options = new TrainingOptions
        {
            LearningRate = 1e-9, BatchSize = 2, MaxSteps = 40, EvalSteps = 2, Schedule = LearningRateSchedule.Constant,
            EarlyStopping = new EarlyStopping("eval_rewards/margins", Patience: 2, GreaterIsBetter: true),
        };
        // A learning rate of 1e-9 barely moves the weights: margins stall and the run stops after 1 + 2 evaluations.
        TrainingResult result = new PreferenceTrainer(policy, PreferenceLosses.Dpo(), options, reference).Train(Pairs(4), Pairs(2));
        Assert.True(result.StoppedEarly);
        Assert.True(result.Steps < 40);
        Assert.Contains(result.History, h => h.ContainsKey("eval_loss"));
    }

    [Fact]
    public void The_reward_loss_subtracts_the_pairs_margin()
    {
        using var reward = new RewardModel(TinyModels.Random(TinyModels.ConfigJson()), new ScalarHead(32, generator: new Generator(3)));
        var pair = new TokenizedPair([1, 5], [10, 11], [40, 41], Here);
        var trainer = new RewardTrainer(reward, new TrainingOptions { BatchSize = 1 });
        using var scope = NewDisposeScope();
        double Score(int[] completion) => reward.Score(tensor(new long[] { 1, 5 }.Concat(completion.Select(i => (long)i)).ToArray()).unsqueeze(0),
            ones(1, 4, ScalarType.Int64)).item<float>();
        double delta = Score([10, 11]) - Score([40, 41]);
        double LogSigmoid(double x) => x >= 0 ? -Math.Log(1 + Math.Exp(-x)) : x - Math.Log(1 + Math.Exp(x));

        Assert.Equal(-LogSigmoid(delta), trainer.Evaluate([pair])["loss"], 5);
        Assert.Equal(-LogSigmoid(delta - 2), trainer.Evaluate([pair with { Margin = 2 }])["loss"], 5);
    }

    [Fact]
    public void Margins_are_read_from_the_data()
    {
        string path = Path.Combine(_models.Root, "m.jsonl");
        File.WriteAllLines(path, ["""{"prompt": "p", "chosen": "a", "rejected": "b", "margin": 1.5}"""]);
        Assert.Equal(1.5, ((PreferencePair)PreferenceData.ReadPairs(path).Single()).Margin);
    }
}
