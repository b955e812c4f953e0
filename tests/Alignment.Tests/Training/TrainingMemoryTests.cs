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
/// Tests that measure the process's resident memory or change a process-wide setting run alone: another test
/// allocating at the same time (a model, Roslyn compiling the README) would be counted as this test's growth, and a
/// thread count changed under another test changes its float sums.
/// </summary>
[CollectionDefinition(nameof(MemoryMeasurement), DisableParallelization = true)]
public sealed class MemoryMeasurement;

/// <summary>
/// Native memory is released by disposal: over 300 steps, with the garbage collector never asked to run, the live
/// tensor count is the same at steps 5, 200 and 300, and from step 100 to step 300 the native heap and the resident
/// memory (after <c>malloc_trim</c> hands freed pages back) grow less than <see cref="NativeBound"/> and
/// <see cref="RssBound"/>. Heap and memory are compared from step 100 because the runtime's tiered JIT recompiles hot
/// methods during the first seconds (~6 MiB of native heap over the first 100 steps here; flat with
/// <c>DOTNET_TieredCompilation=0</c>). A tensor left undisposed once per step fails the live count at once.
/// </summary>
[Collection(nameof(MemoryMeasurement))]
public sealed class TrainingMemoryTests : IDisposable
{
    /// <summary>
    /// How much the native heap in use (glibc's <c>mallinfo2</c>: every tensor of the CPU allocator) may grow between step
    /// 100 and step 300. What grows is TorchSharp's scalar operands (a <c>Scalar</c> of ~50 bytes for each number passed
    /// to a tensor operation, freed by its finalizer: ~17 KiB per DPO step, host memory only), 3.4 MiB over 200 steps
    /// when no collection happens to run in between; a collection brings it back.
    /// </summary>
    const long NativeBound = 8L << 20;

    /// <summary>How much resident memory may grow: the native bound plus the managed heap, which grows until the runtime
    /// decides to collect (the test never asks it to).</summary>
    const long RssBound = 16L << 20;

    readonly TinyTokenizers _tokenizers = new();

    public void Dispose() => _tokenizers.Dispose();

    /// <summary>Live tensors, native heap in use and trimmed resident bytes at steps 5, 100, 200 and 300.</summary>
    sealed class Probe : ITrainingCallback
    {
        public readonly Dictionary<int, (long Live, long Rss)> Seen = [];
        public readonly Dictionary<int, long> Malloc = [];

        public void OnLog(TrainingProgress progress)
        {
            if (progress.IsEvaluation || progress.Step is not (5 or 100 or 200 or 300))
                return;
            NativeHeap.Trim();
            long pages = long.Parse(File.ReadAllText("/proc/self/statm").Split(' ')[1]);
            Malloc[progress.Step] = NativeHeap.InUse();
            Seen[progress.Step] = (DisposeScopeManager.Statistics.ThreadTotalLiveCount, pages * Environment.SystemPageSize);
        }

        public void Check()
        {
            Assert.Equal(Seen[5].Live, Seen[200].Live);
            Assert.Equal(Seen[5].Live, Seen[300].Live);
            Assert.True(Malloc[300] - Malloc[100] <= NativeBound, $"the native heap grew by {(Malloc[300] - Malloc[100]) >> 10} KiB from step 100 to step 300");
            Assert.True(Seen[300].Rss - Seen[100].Rss <= RssBound, $"resident memory grew by {(Seen[300].Rss - Seen[100].Rss) >> 10} KiB from step 100 to step 300");
        }
    }

    static TrainingOptions Steps300 => new() { LearningRate = 1e-3, BatchSize = 4, MaxSteps = 300, Schedule = LearningRateSchedule.Constant, Seed = 3 };

    [Fact]
    public void Dpo_holds_live_tensors_and_resident_memory_flat_for_300_steps()
    {
        using var policy = PreferenceTrainerTests.Policy();
        using ReferenceModel reference = policy.CreateReference();
        var probe = new Probe();
        new PreferenceTrainer(policy, PreferenceLosses.Dpo(), Steps300, reference, callbacks: [probe]).Train(PreferenceTrainerTests.Pairs(8));
        probe.Check();
    }

    [Fact]
    public void Sft_holds_live_tensors_and_resident_memory_flat_for_300_steps()
    {
        using var policy = PreferenceTrainerTests.Policy();
        var probe = new Probe();
        var data = PreferenceTrainerTests.Pairs(8).Select(p => new TokenizedCompletion(p.Prompt, p.Chosen, true, p.Source)).ToList();
        new SftTrainer(policy, Steps300, callbacks: [probe]).Train(data);
        probe.Check();
    }

    [Fact]
    public void Ppo_holds_live_tensors_and_resident_memory_flat_for_300_steps()
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
            Training = PpoOptions.DefaultTraining with { MaxSteps = 300, BatchSize = 4, LearningRate = 1e-3, Seed = 3 },
            ResponseLength = 6, PpoEpochs = 1, Temperature = 1.0,
        }, callbacks: [probe]).Train(["hello", "the world", "say", "more"]);
        probe.Check();
    }
}
