using System.Globalization;
using Alignment.Models;
using Alignment.Rl;
using Alignment.Scoring;
using Alignment.Tokenization;

namespace Alignment.Benchmarks.Scale;

/// <summary>
/// What GRPO's β = 0 saves: the same GRPO steps on the llama-4x512 config (random weights) with β = 0 (no reference
/// model built or run, TRL 1.x's default) and with β = 0.04 (a frozen reference copy and its forward on every rollout).
/// Per setting: median step time after the first step, and the peak resident memory of the steps above the runtime's.
/// </summary>
/// <remarks>Run: <c>dotnet run -c Release --project benchmarks/Alignment.Benchmarks -- grpo-beta [steps] [repeats]</c>.</remarks>
internal static class GrpoReferenceRun
{
    public static int Run(string[] args)
    {
        Alignment.Native.TorchRuntime.EnsureLoaded();
        int steps = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 4;
        int repeats = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 1;
        string tokenizerFolder = Directory.CreateTempSubdirectory("grpo-beta-").FullName;
        ByteLevelTokenizer.WriteFolder(tokenizerFolder);
        var tokenizer = ModelTokenizer.FromFolder(tokenizerFolder);
        long baseline = PeakNativeMemory.ResetPeak();
        Console.WriteLine($"threads {Alignment.Native.TorchRuntime.Threads}; resident before any model: {baseline >> 20} MiB (subtracted below)");
        Console.WriteLine("| β | reference | step (median) | peak RSS of the steps − baseline (MiB) |");
        Console.WriteLine("|---|---|---|---|");
        for (int repeat = 0; repeat < repeats; repeat++)
            foreach (double beta in new[] { 0.0, 0.04 })
                RunCase(beta, steps, tokenizer, baseline);
        Directory.Delete(tokenizerFolder, recursive: true);
        return 0;
    }

    static void RunCase(double beta, int steps, ModelTokenizer tokenizer, long baseline)
    {
        var config = DecoderConfig.FromJson(ScaleRun.Config(512, 1376, 4, 8, 8, 32_000, tied: false, theta: 10_000));
        using var model = new LlamaForCausalLM(config);
        model.InitializeWeights(seed: 1);
        using var policy = new PolicyModel(model);
        using ReferenceModel? reference = beta == 0 ? null : policy.CreateReference();
        var probe = new ScaleRun.StepProbe();
        var reward = new DelegateReward((_, completion) => completion.Count(char.IsAsciiLetterLower) / (double)Math.Max(1, completion.Length));
        var options = new PpoOptions
        {
            Algorithm = RlAlgorithm.Grpo, KlCoef = beta, NumGenerations = 4, ResponseLength = 64, PpoEpochs = 1, Temperature = 1.0,
            Training = PpoOptions.DefaultTraining with { BatchSize = 2, MaxSteps = steps, LearningRate = 1e-6, Seed = 1 },
        };
        string[] prompts = [.. Enumerable.Range(0, 2 * steps).Select(i => $"Prompt number {i}: write something long enough to fill the context.")];
        probe.Reset();
        new PpoLoop(policy, reference, reward, tokenizer, null, options, callbacks: [probe]).Train(prompts);
        double step = ScaleRun.Median(probe.Seconds.Skip(1).ToList());
        Console.WriteLine($"| {beta} | {(reference is null ? "none" : "frozen copy")} | {step:F2} s | {(probe.PeakBytes.Max() - baseline) >> 20} |");
    }
}
