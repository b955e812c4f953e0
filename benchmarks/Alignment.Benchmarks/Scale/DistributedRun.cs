using System.Diagnostics;
using System.Globalization;
using Alignment.Data;
using Alignment.Distributed;
using Alignment.Losses;
using Alignment.Models;
using Alignment.Training;
using static TorchSharp.torch;

namespace Alignment.Benchmarks.Scale;

/// <summary>
/// Data-parallel DPO steps of the 4-layer, hidden-512, vocab-32k model on a fixed global batch (4 pairs × 256 tokens),
/// one thread per process: run it alone and under <c>mpirun -np 2</c> and compare the step times. Rank 0 prints the
/// median step time (steps after the first), tokens/s, and the share of the step spent combining gradients.
/// </summary>
/// <remarks>
/// Run: <c>dotnet run -c Release --project benchmarks/Alignment.Benchmarks -- distributed [steps]</c>, then
/// <c>mpirun.openmpi --allow-run-as-root -np 2 dotnet benchmarks/Alignment.Benchmarks/bin/Release/net10.0/Alignment.Benchmarks.dll distributed [steps]</c>.
/// </remarks>
internal static class DistributedRun
{
    const int GlobalPairs = 4, Tokens = 256;

    public static int Run(string[] args)
    {
        Alignment.Native.TorchRuntime.EnsureLoaded();
        Alignment.Native.TorchRuntime.SetThreads(1);
        int steps = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 6;
        IProcessGroup processes = ProcessGroup.For(DistributedBackend.Auto);
        if (GlobalPairs % processes.WorldSize != 0)
            throw new ArgumentException($"{GlobalPairs} pairs do not split over {processes.WorldSize} processes.");

        var config = DecoderConfig.FromJson(ScaleRun.Config(512, 1376, 4, 8, 8, 32_000, tied: false, theta: 10_000));
        using var model = new LlamaForCausalLM(config);
        model.InitializeWeights(seed: 1);
        using var policy = new PolicyModel(model);
        using ReferenceModel reference = policy.CreateReference();
        var random = new Random(1);
        int half = Tokens / 2;
        int[] Ids() => Enumerable.Range(0, half).Select(_ => random.Next(3, config.VocabSize)).ToArray();
        var pairs = Enumerable.Range(0, GlobalPairs * steps).Select(i => new TokenizedPair(Ids(), Ids(), Ids(), new SourceLocation("random", i + 1))).ToList();

        var seconds = new List<double>();
        var clock = Stopwatch.StartNew();
        var options = new TrainingOptions { LearningRate = 1e-6, BatchSize = GlobalPairs / processes.WorldSize, MaxSteps = steps, Schedule = LearningRateSchedule.Constant };
        var probe = new StepTimes(clock, seconds);
        new PreferenceTrainer(policy, PreferenceLosses.Dpo(), options, reference, callbacks: [probe]).Train(pairs);
        if (processes.Rank != 0)
            return 0;
        double step = seconds.Skip(1).Order().ElementAt((seconds.Count - 1) / 2);
        double reduce = GradientAverage.TimeAcrossProcesses.TotalSeconds / steps;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"processes {processes.WorldSize} × 1 thread: step {step:F2} s (median of {seconds.Count - 1}), {2.0 * GlobalPairs * Tokens / step:F0} tokens/s, " +
            $"combining gradients {reduce:F3} s per step ({reduce / step:P1} of the step)"));
        return 0;
    }

    sealed class StepTimes(Stopwatch clock, List<double> seconds) : ITrainingCallback
    {
        public void OnLog(TrainingProgress progress)
        {
            if (progress.IsEvaluation)
                return;
            seconds.Add(clock.Elapsed.TotalSeconds);
            clock.Restart();
        }
    }
}
