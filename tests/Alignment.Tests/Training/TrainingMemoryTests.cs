using Alignment.Losses;
using Alignment.Models;
using Alignment.Training;
using TorchSharp;

namespace Alignment.Tests.Training;

/// <summary>
/// Tests that measure the process's resident memory run alone: another test allocating at the same time (a model,
/// Roslyn compiling the README) would be counted as this test's growth.
/// </summary>
[CollectionDefinition(nameof(MemoryMeasurement), DisableParallelization = true)]
public sealed class MemoryMeasurement;

[Collection(nameof(MemoryMeasurement))]
public sealed class TrainingMemoryTests
{
    [Fact]
    public void Two_hundred_steps_leave_no_live_tensors_behind()
    {
        using var policy = PreferenceTrainerTests.Policy();
        using ReferenceModel reference = policy.CreateReference();
        var trainer = new PreferenceTrainer(policy, PreferenceLosses.Dpo(), PreferenceTrainerTests.Options(steps: 10), reference);
        trainer.Train(PreferenceTrainerTests.Pairs(8));
        long live = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        GC.Collect();
        long rssBefore = Environment.WorkingSet;

        new PreferenceTrainer(policy, PreferenceLosses.Dpo(), PreferenceTrainerTests.Options(steps: 200), reference).Train(PreferenceTrainerTests.Pairs(8));

        GC.Collect();
        Assert.InRange(DisposeScopeManager.Statistics.ThreadTotalLiveCount - live, 0, 64); // the new optimizer's state only
        Assert.True(Environment.WorkingSet - rssBefore < 64L << 20, $"resident memory grew by {(Environment.WorkingSet - rssBefore) >> 20} MiB");
    }
}
