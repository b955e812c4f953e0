using System.Runtime.CompilerServices;
using Alignment.Losses;
using Alignment.Models;
using Alignment.Native;
using Heap = Alignment.Native.NativeHeap;
using Alignment.Tests.Training;
using Alignment.Training;
using static TorchSharp.torch;

namespace Alignment.Tests.Native;

/// <summary>
/// The C library's heap as the library leaves it: huge pages advised for LibTorch's large CPU tensors, and what a
/// training step freed handed back to the system after each update.
/// </summary>
[Collection(nameof(MemoryMeasurement))]
public sealed class NativeHeapTests
{
    /// <summary>
    /// The library's entry points (model constructors, the <c>align</c> tool) call <see cref="TorchRuntime.EnsureLoaded"/>
    /// before any tensor exists; here a test may make the process's first tensor, so the test assembly does the same
    /// when it loads.
    /// </summary>
    [ModuleInitializer]
    internal static void LoadTorchFirst() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void LibTorch_is_asked_to_advise_huge_pages_and_a_large_tensor_carries_the_advice()
    {
        if (!OperatingSystem.IsLinux())
            return;
        Assert.Equal("1", Heap.NativeVariable(Heap.HugePagesVariable));
        if (!File.Exists("/sys/kernel/mm/transparent_hugepage/enabled"))
            return; // a kernel without transparent huge pages refuses the advice
        // 12 MiB: past LibTorch's 2 MiB threshold. (No check that a small tensor lacks the advice: it may reuse heap
        // pages a freed large tensor had advised.)
        using Tensor large = zeros(3 << 20, ScalarType.Float32);
        Assert.Contains("hg", FlagsOfMapping(large.storage<float>().data_ptr()));
    }

    [Fact]
    public void A_training_step_hands_the_heap_s_freed_pages_back()
    {
        if (!OperatingSystem.IsLinux())
            return;
        // 192 MiB of freed 96 KiB blocks below one block still in use: glibc keeps them (only a free top is returned on free).
        IntPtr[] blocks = Enumerable.Range(0, 2048).Select(_ => Malloc(96 << 10)).ToArray();
        foreach (IntPtr block in blocks)
            Fill(block, 96 << 10);
        IntPtr keep = Malloc(96 << 10);
        foreach (IntPtr block in blocks)
            Free(block);
        long retained = ResidentBytes();

        using var policy = PreferenceTrainerTests.Policy();
        using ReferenceModel reference = policy.CreateReference();
        long? afterStep = null;
        var probe = new StepCallback(() => afterStep = ResidentBytes());
        new PreferenceTrainer(policy, PreferenceLosses.Dpo(), new TrainingOptions { BatchSize = 2, MaxSteps = 1 }, reference, callbacks: [probe])
            .Train(PreferenceTrainerTests.Pairs(2));
        Free(keep);
        Assert.NotNull(afterStep);
        Assert.True(retained - afterStep >= 150L << 20,
            $"resident memory went from {retained >> 20} MiB with 192 MiB freed to {afterStep >> 20} MiB after a step: the step kept the freed pages");
    }

    /// <summary>The <c>VmFlags</c> of the mapping in <c>/proc/self/smaps</c> that holds <paramref name="address"/>.</summary>
    static string FlagsOfMapping(IntPtr address)
    {
        ulong target = (ulong)address;
        bool inside = false;
        foreach (string line in File.ReadLines("/proc/self/smaps"))
        {
            string[] range = line.Split(' ')[0].Split('-');
            if (range.Length == 2 && ulong.TryParse(range[0], System.Globalization.NumberStyles.HexNumber, null, out ulong start)
                && ulong.TryParse(range[1], System.Globalization.NumberStyles.HexNumber, null, out ulong end))
                inside = target >= start && target < end;
            else if (inside && line.StartsWith("VmFlags:", StringComparison.Ordinal))
                return line;
        }
        throw new InvalidOperationException($"no mapping holds 0x{target:x}");
    }

    static long ResidentBytes() => long.Parse(File.ReadAllText("/proc/self/statm").Split(' ')[1]) * Environment.SystemPageSize;

    static void Fill(IntPtr block, int bytes)
    {
        for (int offset = 0; offset < bytes; offset += 4096)
            System.Runtime.InteropServices.Marshal.WriteByte(block, offset, 1); // touch every page: resident
    }

    [System.Runtime.InteropServices.DllImport("libc.so.6", EntryPoint = "malloc")]
    static extern IntPtr Malloc(nuint size);

    [System.Runtime.InteropServices.DllImport("libc.so.6", EntryPoint = "free")]
    static extern void Free(IntPtr block);

    sealed class StepCallback(Action onStep) : ITrainingCallback
    {
        public void OnLog(TrainingProgress progress)
        {
            if (!progress.IsEvaluation)
                onStep();
        }
    }
}
