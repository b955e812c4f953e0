using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace Alignment.Benchmarks;

/// <summary>
/// One invocation per iteration (each is seconds long at LLM vocabulary sizes), a few iterations, and the
/// peak-native-memory column. Benchmarks run in this process: BenchmarkDotNet's generated per-job projects do not
/// import Alignment's build target, so their copy of TorchSharp's native bridge would not load on Debian 12.
/// </summary>
internal sealed class BenchmarkConfig : ManualConfig
{
    public BenchmarkConfig()
    {
        AddJob(Job.Default
            .WithStrategy(RunStrategy.Monitoring)
            .WithWarmupCount(1)
            .WithIterationCount(10)
            .WithToolchain(InProcessEmitToolchain.Instance));
        AddColumn(new PeakNativeMemoryColumn());
        Add(DefaultConfig.Instance);
        WithOptions(ConfigOptions.JoinSummary);
    }
}
