using Alignment.Data;
using Alignment.Losses;
using Alignment.Models;
using Alignment.Tests.Models;
using Alignment.Training;

namespace Alignment.Tests.Training;

public sealed class TrainingCallbackTests : IDisposable
{
    readonly TinyModels _models = new();

    public void Dispose() => _models.Dispose();

    sealed class Recorder : ITrainingCallback
    {
        public List<string> Events { get; } = [];

        public void OnTrainBegin(int startStep, int totalSteps) => Events.Add($"begin {startStep}/{totalSteps}");

        public void OnLog(TrainingProgress progress) => Events.Add((progress.IsEvaluation ? "eval " : "step ") + progress.Step);

        public void OnCheckpoint(string folder) => Events.Add("checkpoint " + Path.GetFileName(folder));

        public void OnTrainEnd(TrainingResult result) => Events.Add($"end {result.Steps}");
    }

    static readonly SourceLocation Here = new("x.jsonl", 1);
    static List<TokenizedCompletion> Completions(int n) => Enumerable.Range(0, n).Select(i => new TokenizedCompletion([1, 3 + i], [10 + i, 2], true, Here)).ToList();

    [Fact]
    public void A_users_callback_sees_every_step_evaluation_and_checkpoint_in_order()
    {
        using var policy = new PolicyModel(TinyModels.Random(TinyModels.ConfigJson()));
        var recorder = new Recorder();
        var options = new TrainingOptions { LearningRate = 1e-3, BatchSize = 2, MaxSteps = 4, EvalSteps = 2, SaveSteps = 3, OutputDir = Path.Combine(_models.Root, "run") };
        // 8 examples, 2 per step: the epoch ends at step 4, which is also the last.
        new SftTrainer(policy, options, callbacks: [recorder]).Train(Completions(8), Completions(2));
        Assert.Equal(["begin 0/4", "step 1", "step 2", "eval 2", "step 3", "checkpoint checkpoint-3", "step 4", "eval 4", "checkpoint checkpoint-4", "end 4"],
            recorder.Events);
    }

    [Fact]
    public void Metrics_jsonl_holds_what_the_callbacks_saw()
    {
        using var policy = new PolicyModel(TinyModels.Random(TinyModels.ConfigJson()));
        var seen = new List<TrainingProgress>();
        string output = Path.Combine(_models.Root, "metrics");
        new SftTrainer(policy, new TrainingOptions { BatchSize = 2, MaxSteps = 3, OutputDir = output }, callbacks: [new ProgressCallback(new Progress(seen))])
            .Train(Completions(6));
        string[] lines = File.ReadAllLines(Path.Combine(output, "metrics.jsonl"));
        Assert.Equal(3, lines.Length);
        Assert.Equal(seen.Select(p => p.Metrics["loss"]), lines.Select(l => System.Text.Json.Nodes.JsonNode.Parse(l)!["loss"]!.GetValue<double>()));
    }

    sealed class Progress(List<TrainingProgress> seen) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => seen.Add(value);
    }

    [Fact]
    public void Validation_names_every_bad_value_at_once()
    {
        var error = Assert.Throws<ArgumentException>(() => new TrainingOptions { LearningRate = 0, BatchSize = 0, WarmupRatio = 1, SaveSteps = 0 }.Validate());
        foreach (string name in new[] { "learning_rate", "per_device_train_batch_size", "warmup_ratio", "save_steps" })
            Assert.Contains(name, error.Message);
        var ppo = Assert.Throws<ArgumentException>(() => new Alignment.Rl.PpoOptions { Training = new TrainingOptions { Epochs = 0 }, Gamma = 2, ClipRange = 0 }.Validate());
        foreach (string name in new[] { "num_train_epochs", "gamma", "cliprange" })
            Assert.Contains(name, ppo.Message);
        var loss = Assert.Throws<ArgumentException>(() => new PreferenceLossOptions { Beta = 0, LabelSmoothing = 0.9 }.Validate());
        Assert.Contains("beta", loss.Message);
        Assert.Contains("label_smoothing", loss.Message);
    }
}
