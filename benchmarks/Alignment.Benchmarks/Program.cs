using Alignment.Benchmarks;
using Alignment.Benchmarks.Scale;
using BenchmarkDotNet.Running;

// Run: dotnet run -c Release --project benchmarks/Alignment.Benchmarks -- --filter '*'
//      dotnet run -c Release --project benchmarks/Alignment.Benchmarks -- scale [case] [steps]   (real-size DPO steps)
if (args is ["scale", .. var rest])
    return ScaleRun.Run(rest);
PeakNativeMemory.StartRecording();
BenchmarkSwitcher.FromAssembly(typeof(PeakNativeMemory).Assembly).Run(args, new BenchmarkConfig());
return 0;
