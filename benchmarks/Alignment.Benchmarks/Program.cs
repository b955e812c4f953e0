using Alignment.Benchmarks;
using BenchmarkDotNet.Running;

// Run: dotnet run -c Release --project benchmarks/Alignment.Benchmarks -- --filter '*'
PeakNativeMemory.StartRecording();
BenchmarkSwitcher.FromAssembly(typeof(PeakNativeMemory).Assembly).Run(args, new BenchmarkConfig());
