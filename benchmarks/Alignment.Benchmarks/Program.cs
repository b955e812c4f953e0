using Alignment.Benchmarks;
using Alignment.Benchmarks.Scale;
using BenchmarkDotNet.Running;

// Run: dotnet run -c Release --project benchmarks/Alignment.Benchmarks -- --filter '*'
//      dotnet run -c Release --project benchmarks/Alignment.Benchmarks -- scale [case] [steps]   (real-size DPO steps)
//      dotnet run -c Release --project benchmarks/Alignment.Benchmarks -- distributed [steps]   (alone, then under mpirun -np 2)
//      dotnet run -c Release --project benchmarks/Alignment.Benchmarks -- grpo-beta [steps] [repeats]   (GRPO with β = 0 against β > 0)
//      dotnet run -c Release --project benchmarks/Alignment.Benchmarks -- export-gguf [type] [folder]   (a 1B model to GGUF: time, peak memory)
if (args is ["scale", .. var rest])
    return ScaleRun.Run(rest);
if (args is ["distributed", .. var more])
    return DistributedRun.Run(more);
if (args is ["grpo-beta", .. var grpo])
    return GrpoReferenceRun.Run(grpo);
if (args is ["export-gguf", .. var export])
    return GgufExportRun.Run(export);
PeakNativeMemory.StartRecording();
BenchmarkSwitcher.FromAssembly(typeof(PeakNativeMemory).Assembly).Run(args, new BenchmarkConfig());
return 0;
