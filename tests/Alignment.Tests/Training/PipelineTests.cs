using Alignment.Data;
using Alignment.Losses;
using Alignment.Models;
using Alignment.Tests.Models;
using Alignment.Training;
using static TorchSharp.torch;

namespace Alignment.Tests.Training;

public sealed class PipelineTests : IDisposable
{
    readonly TinyModels _models = new();

    public void Dispose() => _models.Dispose();

    static readonly SourceLocation Here = new("x.jsonl", 1);
    static readonly List<TokenizedCompletion> Sft = Enumerable.Range(0, 6).Select(i => new TokenizedCompletion([1, 3 + i], [10 + i, 11 + i, 2], true, Here)).ToList();
    static readonly List<TokenizedPair> Pairs = Enumerable.Range(0, 6).Select(i => new TokenizedPair([1, 3 + i], [10 + i, 2], [40, 2], Here)).ToList();
    static TrainingOptions Options(int steps) => new() { LearningRate = 2e-3, BatchSize = 3, MaxSteps = steps, Schedule = LearningRateSchedule.Constant };

    [Fact]
    public void Stages_run_in_sequence_each_from_the_previous_stages_folder_and_resume_skips_finished_ones()
    {
        string baseFolder = _models.Folder("base", TinyModels.ConfigJson());
        string work = Path.Combine(_models.Root, "work");
        var results = new Pipeline(baseFolder, work)
            .Sft(Sft, Options(8))
            .Preference(PreferenceLosses.Dpo(), Pairs, Options(4))
            .Run();

        Assert.Equal(["sft", "sigmoid"], results.Select(r => r.Name));
        Assert.All(results, r => Assert.True(File.Exists(Path.Combine(r.ModelFolder, "config.json"))));
        // The preference stage started from the SFT model: its first DPO loss is log 2 (policy = reference = SFT model).
        Assert.Equal(Math.Log(2), results[1].Result!.History[0]["loss"], 4);

        var again = new Pipeline(baseFolder, work).Sft(Sft, Options(8)).Preference(PreferenceLosses.Dpo(), Pairs, Options(4)).Run(resume: true);
        Assert.All(again, r => Assert.Null(r.Result));
    }

    [Theory]
    [InlineData(SftMixMode.Interleaved)]
    [InlineData(SftMixMode.Sequential)]
    public void Sft_data_mixed_into_preference_training_is_reported(SftMixMode mode)
    {
        using var policy = new PolicyModel(TinyModels.Random(TinyModels.ConfigJson()));
        using ReferenceModel reference = policy.CreateReference();
        var trainer = new PreferenceTrainer(policy, PreferenceLosses.Dpo(), Options(4), reference, sftMix: new SftMix(Sft, 0.5, mode));
        TrainingResult result = trainer.Train(Pairs);
        if (mode == SftMixMode.Interleaved)
            Assert.All(result.History, h => Assert.True(h.ContainsKey("sft_loss") && h.ContainsKey("rewards/margins")));
        else
            Assert.Equal([false, true, false, true], result.History.Select(h => h.ContainsKey("sft_loss") && !h.ContainsKey("rewards/margins")));
    }

    [Fact]
    public void Metrics_can_also_go_to_tensorboard()
    {
        using var policy = new PolicyModel(TinyModels.Random(TinyModels.ConfigJson()));
        string board = Path.Combine(_models.Root, "board");
        new SftTrainer(policy, Options(2) with { TensorBoardDir = board }).Train(Sft);
        Assert.NotEmpty(Directory.GetFiles(board, "events.out.tfevents*", SearchOption.AllDirectories));
    }
}
