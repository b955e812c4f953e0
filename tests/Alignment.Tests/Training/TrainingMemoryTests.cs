using System.Runtime.InteropServices;
using Alignment.Data;
using Alignment.Losses;
using Alignment.Models;
using Alignment.Rl;
using Alignment.Scoring;
using Alignment.Tests.Models;
using Alignment.Tests.Tokenization;
using Alignment.Tokenization;
using Alignment.Training;
using TorchSharp;

namespace Alignment.Tests.Training;

/// <summary>
/// Tests that measure the process's resident memory run alone: another test allocating at the same time (a model,
/// Roslyn compiling the README) would be counted as this test's growth.
/// </summary>
[CollectionDefinition(nameof(MemoryMeasurement), DisableParallelization = true)]
public sealed class MemoryMeasurement;

/// <summary>
/// Native memory is released by disposal: over 200 steps, with the garbage collector never asked to run, the live
/// tensor count does not move from step 5 to step 200, and the native heap and the resident memory (after
/// <c>malloc_trim</c> hands freed pages back) stay within <see cref="NativeBound"/> and <see cref="RssBound"/> of it.
/// A tensor left undisposed once per step fails the live count at once.
/// </summary>
[Collection(nameof(MemoryMeasurement))]
public sealed class TrainingMemoryTests : IDisposable
{
    /// <summary>
    /// How much the native heap in use (glibc's <c>mallinfo2</c>: every tensor of the CPU allocator) may grow between step
    /// 5 and step 200. What remains is TorchSharp's scalar operands (a <c>Scalar</c> of ~50 bytes for each number passed
    /// to a tensor operation, freed by its finalizer: a few hundred per step, host memory only) and allocator warm-up.
    /// </summary>
    const long NativeBound = 6L << 20;

    /// <summary>How much resident memory may grow: the native bound plus the managed heap, which grows until the runtime
    /// decides to collect (the test never asks it to).</summary>
    const long RssBound = 16L << 20;

    readonly TinyTokenizers _tokenizers = new();

    public void Dispose() => _tokenizers.Dispose();

    [DllImport("libc", EntryPoint = "malloc_trim")]
    static extern int MallocTrim(nuint pad);

    [StructLayout(LayoutKind.Sequential)]
    struct MallInfo2
    {
        public nuint Arena, Ordblks, Smblks, Hblks, Hblkhd, Usmblks, Fsmblks, Uordblks, Fordblks, Keepcost;
    }

    [DllImport("libc", EntryPoint = "mallinfo2")]
    static extern MallInfo2 MallocInfo();

    /// <summary>Live tensors, native heap in use and trimmed resident bytes at steps 5 and 200.</summary>
    sealed class Probe : ITrainingCallback
    {
        public readonly Dictionary<int, (long Live, long Rss)> Seen = [];
        public readonly Dictionary<int, long> Malloc = [];

        public void OnLog(TrainingProgress progress)
        {
            if (progress.IsEvaluation || progress.Step is not (5 or 200))
                return;
            MallocTrim(0);
            long pages = long.Parse(File.ReadAllText("/proc/self/statm").Split(' ')[1]);
            MallInfo2 info = MallocInfo();
            Malloc[progress.Step] = (long)(info.Uordblks + info.Hblkhd);
            Seen[progress.Step] = (DisposeScopeManager.Statistics.ThreadTotalLiveCount, pages * Environment.SystemPageSize);
        }

        public void Check()
        {
            var (live5, rss5) = Seen[5];
            var (live200, rss200) = Seen[200];
            Assert.Equal(live5, live200);
            Assert.True(Malloc[200] - Malloc[5] <= NativeBound, $"the native heap grew by {(Malloc[200] - Malloc[5]) >> 10} KiB from step 5 to step 200");
            Assert.True(rss200 - rss5 <= RssBound, $"resident memory grew by {(rss200 - rss5) >> 10} KiB from step 5 to step 200");
        }
    }

    static TrainingOptions Steps200 => new() { LearningRate = 1e-3, BatchSize = 4, MaxSteps = 200, Schedule = LearningRateSchedule.Constant, Seed = 3 };

    [Fact]
    public void Dpo_holds_live_tensors_and_resident_memory_flat_for_200_steps()
    {
        using var policy = PreferenceTrainerTests.Policy();
        using ReferenceModel reference = policy.CreateReference();
        var probe = new Probe();
        new PreferenceTrainer(policy, PreferenceLosses.Dpo(), Steps200, reference, callbacks: [probe]).Train(PreferenceTrainerTests.Pairs(8));
        probe.Check();
    }

    [Fact]
    public void Sft_holds_live_tensors_and_resident_memory_flat_for_200_steps()
    {
        using var policy = PreferenceTrainerTests.Policy();
        var probe = new Probe();
        var data = PreferenceTrainerTests.Pairs(8).Select(p => new TokenizedCompletion(p.Prompt, p.Chosen, true, p.Source)).ToList();
        new SftTrainer(policy, Steps200, callbacks: [probe]).Train(data);
        probe.Check();
    }

    [Fact]
    public void Ppo_holds_live_tensors_and_resident_memory_flat_for_200_steps()
    {
        var json = TinyModels.ConfigJson();
        json["vocab_size"] = 300;
        using var policy = new PolicyModel(TinyModels.Random(json, seed: 5));
        using ReferenceModel reference = policy.CreateReference();
        var tokenizer = ModelTokenizer.FromFolder(_tokenizers.Folder("tok"));
        var reward = new DelegateReward((_, c) => c.Count(ch => ch is >= 'a' and <= 'z') / (double)Math.Max(1, c.Length));
        var probe = new Probe();
        new PpoLoop(policy, reference, reward, tokenizer, null, new PpoOptions
        {
            Training = PpoOptions.DefaultTraining with { MaxSteps = 200, BatchSize = 4, LearningRate = 1e-3, Seed = 3 },
            ResponseLength = 6, PpoEpochs = 1, Temperature = 1.0,
        }, callbacks: [probe]).Train(["hello", "the world", "say", "more"]);
        probe.Check();
    }
}
