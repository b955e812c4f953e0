using Alignment.Losses;
using Alignment.Models;
using Alignment.Training;

namespace Alignment.Tests.Training;

/// <summary>A damaged newest checkpoint is passed over for the one before it, and the run still ends as a straight run does.</summary>
public sealed class CheckpointResumeTests : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("alignment-resume-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    double[] Train(string output, bool resume, CancellationToken cancel = default, IEnumerable<ITrainingCallback>? callbacks = null)
    {
        using var policy = PreferenceTrainerTests.Policy();
        using ReferenceModel reference = policy.CreateReference();
        var options = PreferenceTrainerTests.Options(output, steps: 6) with { SaveSteps = 1 };
        return new PreferenceTrainer(policy, PreferenceLosses.Dpo(), options, reference, callbacks: callbacks)
            .Train(PreferenceTrainerTests.Pairs(8), resume: resume, cancellationToken: cancel).History.Select(h => h["loss"]).ToArray();
    }

    /// <summary>Cancels the run when it logs <paramref name="step"/> (the run then writes a checkpoint and stops).</summary>
    internal sealed class CancelAt(int step, CancellationTokenSource cancel) : ITrainingCallback
    {
        public void OnLog(TrainingProgress progress)
        {
            if (progress.Step == step)
                cancel.Cancel();
        }
    }

    string Interrupted(string name)
    {
        string output = Path.Combine(_folder, name);
        using var cancel = new CancellationTokenSource();
        Train(output, resume: false, cancel.Token, [new CancelAt(4, cancel)]);
        Assert.True(Directory.Exists(Path.Combine(output, "checkpoint-4")));
        return output;
    }

    [Theory]
    [InlineData("trainer_state.json", "{ \"global_step\": 4, \"log_hist")]
    [InlineData("optimizer.safetensors", "header")]
    [InlineData("optimizer.safetensors", "data")]
    public void A_damaged_newest_checkpoint_is_passed_over_and_the_run_ends_as_a_straight_one(string file, string content)
    {
        double[] straight = Train(Path.Combine(_folder, "straight"), resume: false);
        string output = Interrupted("damaged-" + file);
        string damaged = Path.Combine(output, "checkpoint-4", file);
        byte[] bytes = File.ReadAllBytes(damaged);
        if (content == "header")
            File.WriteAllBytes(damaged, bytes[..100]);          // cut inside the header
        else if (content == "data")
            File.WriteAllBytes(damaged, bytes[..^8]);           // the last moment is missing its end
        else
            File.WriteAllText(damaged, content);

        Assert.Equal(straight, Train(output, resume: true));
    }

    [Fact]
    public void When_every_checkpoint_is_damaged_the_error_names_the_file()
    {
        string output = Interrupted("all-damaged");
        foreach (string checkpoint in Directory.GetDirectories(output, "checkpoint-*"))
            File.WriteAllText(Path.Combine(checkpoint, "trainer_state.json"), "not json");
        var error = Assert.Throws<InvalidDataException>(() => Train(output, resume: true));
        Assert.Contains(Path.Combine(output, "checkpoint-4", "trainer_state.json"), error.Message);
    }
}

public sealed class CheckpointHousekeepingTests : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("alignment-housekeeping-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    static PreferenceTrainer Trainer(PolicyModel policy, ReferenceModel reference, TrainingOptions options, IPreferenceLoss? loss = null) =>
        new(policy, loss ?? PreferenceLosses.Dpo(), options, reference);

    [Fact]
    public void Save_total_limit_keeps_the_newest_checkpoints_and_the_best_one()
    {
        using var policy = PreferenceTrainerTests.Policy();
        using ReferenceModel reference = policy.CreateReference();
        string output = Path.Combine(_folder, "limit");
        var options = PreferenceTrainerTests.Options(output, steps: 8) with
        {
            SaveSteps = 1, SaveTotalLimit = 2, EvalSteps = 1, LearningRate = 1e-12, // eval_loss stalls: the first evaluation stays the best
            EarlyStopping = new EarlyStopping("eval_loss", Patience: 100),
        };
        Trainer(policy, reference, options).Train(PreferenceTrainerTests.Pairs(8), PreferenceTrainerTests.Pairs(2));
        var left = Directory.GetDirectories(output, "checkpoint-*").Select(Path.GetFileName).Order().ToList();
        Assert.Equal(["checkpoint-1", "checkpoint-7", "checkpoint-8"], left);
    }

    [Fact]
    public void A_resume_with_other_options_lists_the_differences_unless_told_to_go_on()
    {
        string output = Path.Combine(_folder, "changed");
        using (var policy = PreferenceTrainerTests.Policy())
        using (ReferenceModel reference = policy.CreateReference())
            Trainer(policy, reference, PreferenceTrainerTests.Options(output, steps: 2) with { SaveSteps = 1 }).Train(PreferenceTrainerTests.Pairs(8));

        using var again = PreferenceTrainerTests.Policy();
        using ReferenceModel againReference = again.CreateReference();
        var changed = PreferenceTrainerTests.Options(output, steps: 4) with { LearningRate = 1e-2, Seed = 5 };
        var error = Assert.Throws<ArgumentException>(() => Trainer(again, againReference, changed, PreferenceLosses.Ipo()).Train(PreferenceTrainerTests.Pairs(8, seed: 1), resume: true));
        foreach (string change in new[] { "learning_rate: 0.005 → 0.01", "seed: 11 → 5", "max_steps: 2 → 4", "loss: \"sigmoid\" → \"ipo\"", "train_data: " })
            Assert.Contains(change, error.Message);

        TrainingResult result = Trainer(again, againReference, changed with { ResumeWithChangedConfig = true }).Train(PreferenceTrainerTests.Pairs(8), resume: true);
        Assert.Equal(4, result.Steps);
    }

    [Fact]
    public void A_second_run_on_the_same_output_folder_is_refused()
    {
        string output = Path.Combine(_folder, "busy");
        Directory.CreateDirectory(output);
        using var held = new FileStream(Path.Combine(output, ".training.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        using var policy = PreferenceTrainerTests.Policy();
        using ReferenceModel reference = policy.CreateReference();
        var error = Assert.Throws<OutputFolderInUseException>(() => Trainer(policy, reference, PreferenceTrainerTests.Options(output, steps: 1)).Train(PreferenceTrainerTests.Pairs(4)));
        Assert.Contains(output, error.Message);
        Assert.False(File.Exists(Path.Combine(output, "metrics.jsonl")));
    }
}
