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

    sealed class CancelAt(int step, CancellationTokenSource cancel) : ITrainingCallback
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
    [InlineData("optimizer.bin", "")]
    public void A_damaged_newest_checkpoint_is_passed_over_and_the_run_ends_as_a_straight_one(string file, string content)
    {
        double[] straight = Train(Path.Combine(_folder, "straight"), resume: false);
        string output = Interrupted("damaged-" + file);
        string damaged = Path.Combine(output, "checkpoint-4", file);
        if (file == "optimizer.bin")
            File.WriteAllBytes(damaged, File.ReadAllBytes(damaged)[..100]); // truncated
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
