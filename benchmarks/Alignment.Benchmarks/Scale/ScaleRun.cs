using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Alignment.Data;
using Alignment.Losses;
using Alignment.Models;
using Alignment.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Benchmarks.Scale;

/// <summary>
/// DPO steps on real model configs with random weights (a benchmark console, not BenchmarkDotNet: one case is minutes
/// long). Per case: median step time of the steps after the first, tokens/s, MFU against a float32 matmul timed in the
/// same run, and the peak resident memory of each step against the analytic budget (weights, trainable gradients, AdamW
/// state, a reference copy when one is live, activations).
/// </summary>
/// <remarks>
/// Run: <c>dotnet run -c Release --project benchmarks/Alignment.Benchmarks -- scale [case] [steps]</c> with case
/// <c>llama-4x512</c> (4 pairs × 256 tokens), <c>smollm2-135m</c> (full DPO) or <c>llama-3.2-1b-lora</c> (rank 16, base
/// frozen), 1 pair × 512 tokens for the real configs; each with and without activation checkpointing.
/// </remarks>
internal static class ScaleRun
{
    sealed record Case(string Name, JsonObject Config, int Pairs, int Tokens, int? LoraRank);

    static readonly Case[] Cases =
    [
        new("llama-4x512", Config(512, 1376, 4, 8, 8, 32_000, tied: false, theta: 10_000), 4, 256, null),
        new("smollm2-135m", Config(576, 1536, 30, 9, 3, 49_152, tied: true, theta: 100_000), 1, 512, null),
        new("llama-3.2-1b-lora", Config(2048, 8192, 16, 32, 8, 128_256, tied: true, theta: 500_000, llama3: true), 1, 512, 16),
    ];

    internal static JsonObject Config(int hidden, int intermediate, int layers, int heads, int kvHeads, int vocab, bool tied, double theta, bool llama3 = false) => new()
    {
        ["model_type"] = "llama", ["hidden_size"] = hidden, ["intermediate_size"] = intermediate, ["num_hidden_layers"] = layers,
        ["num_attention_heads"] = heads, ["num_key_value_heads"] = kvHeads, ["vocab_size"] = vocab, ["tie_word_embeddings"] = tied,
        ["rope_theta"] = theta, ["rms_norm_eps"] = 1e-5, ["max_position_embeddings"] = 8192, ["bos_token_id"] = 1, ["eos_token_id"] = 2,
        ["rope_scaling"] = llama3 ? new JsonObject
        {
            ["rope_type"] = "llama3", ["factor"] = 32.0, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0,
            ["original_max_position_embeddings"] = 8192,
        } : null,
    };

    public static int Run(string[] args)
    {
        Alignment.Native.TorchRuntime.EnsureLoaded();
        bool general = args.Contains("--general"); // the lm_head's general path (logits made again in backward) instead of the fused one
        args = args.Where(a => a != "--general").ToArray();
        string only = args.Length > 0 ? args[0] : "";
        int steps = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 4;
        double matmul = MatmulRate();
        Console.WriteLine($"threads {Alignment.Native.TorchRuntime.Threads}; float32 matmul {matmul / 1e9:F1} GFLOP/s");
        long baseline = PeakNativeMemory.ResetPeak(); // the runtime and LibTorch before any model
        Console.WriteLine($"resident before any model: {baseline >> 20} MiB (subtracted below)");
        Console.WriteLine("| case | checkpointing | step (median) | tokens/s | MFU | peak RSS per step − baseline (MiB) | budget (MiB) | peak / budget |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        foreach (Case c in Cases.Where(c => only == "" || c.Name == only))
            foreach (bool checkpointing in new[] { false, true })
            {
                matmul = Math.Max(matmul, MatmulRate()); // re-measured next to each case; the best rate seen is the peak
                RunCase(c, checkpointing, steps, matmul, baseline, general);
            }
        Console.WriteLine($"best float32 matmul seen: {matmul / 1e9:F1} GFLOP/s");
        return 0;
    }

    /// <summary>FLOP/s of a [2048, 2048] × [2048, 2048] float32 matmul, best of ten (this machine's rate moves with its neighbours).</summary>
    static double MatmulRate()
    {
        using var scope = NewDisposeScope();
        Tensor a = randn(2048, 2048), b = randn(2048, 2048);
        a.mm(b);
        double best = double.MaxValue;
        for (int i = 0; i < 10; i++)
        {
            using var inner = NewDisposeScope();
            var clock = Stopwatch.StartNew();
            a.mm(b);
            best = Math.Min(best, clock.Elapsed.TotalSeconds);
        }
        return 2.0 * 2048 * 2048 * 2048 / best;
    }

    static void RunCase(Case c, bool checkpointing, int steps, double matmul, long baseline, bool general)
    {
        var config = DecoderConfig.FromJson(c.Config);
        using var model = new LlamaForCausalLM(config);
        model.InitializeWeights(seed: 1);
        if (c.LoraRank is { } rank)
            LoraAdapters.Attach(model, new LoraOptions { Rank = rank, Alpha = 2 * rank, TargetModules = [LoraOptions.AllLinear] });
        using var policy = new PolicyModel(model);
        using ReferenceModel reference = policy.CreateReference();
        var random = new Random(1);
        int half = c.Tokens / 2;
        int[] Tokens(int n) => Enumerable.Range(0, n).Select(_ => random.Next(3, config.VocabSize)).ToArray();
        var pairs = Enumerable.Range(0, c.Pairs * steps).Select(i => new TokenizedPair(Tokens(half), Tokens(half), Tokens(half), new SourceLocation("random", i + 1))).ToList();

        long parameters = config.ParameterCount;
        long trainable = model.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
        long tokens = 2L * c.Pairs * c.Tokens; // chosen and rejected rows
        long budget = 4 * parameters + 12 * trainable + (c.LoraRank is null ? 4 * parameters : 0) + ActivationBytes(config, c.Pairs * 2, c.Tokens, checkpointing);

        var probe = new StepProbe();
        var options = new TrainingOptions
        {
            LearningRate = 1e-6, BatchSize = c.Pairs, MaxSteps = steps, Schedule = LearningRateSchedule.Constant, GradientCheckpointing = checkpointing,
        };
        probe.Reset();
        IPreferenceLoss loss = general ? new GeneralPath(PreferenceLosses.Dpo()) : PreferenceLosses.Dpo();
        new PreferenceTrainer(policy, loss, options, reference, callbacks: [probe]).Train(pairs);

        double step = Median(probe.Seconds.Skip(1).ToList());
        // Policy forward 2·P·tokens, backward 4·P (weights and inputs) or 2·P (inputs only, frozen base), reference forward 2·P,
        // attention 4·T·H per token and layer forward (twice that backward); recomputation is not counted as useful work.
        // The input embedding is a lookup, not a matmul: an untied model computes with its lm_head and layers only.
        long computing = parameters - (config.TieWordEmbeddings ? 0 : (long)config.VocabSize * config.HiddenSize);
        double attention = 4.0 * c.Tokens * config.HiddenSize * config.NumHiddenLayers * tokens;
        double flops = (c.LoraRank is null ? 8.0 : 6.0) * computing * tokens + 4 * attention;
        Console.WriteLine($"| {c.Name} | {(checkpointing ? "on" : "off")} | {step:F2} s | {tokens / step:F0} | {flops / step / matmul:P0} | " +
            $"{string.Join(" ", probe.PeakBytes.Select(b => ((b - baseline) >> 20).ToString(CultureInfo.InvariantCulture)))} | {budget >> 20} | " +
            $"{(probe.PeakBytes.Skip(1).Max() - baseline) / (double)budget:F2} |");
    }

    /// <summary>
    /// Activation bytes (float32) that backward needs, per the decoder's saved tensors: per token and layer the residual
    /// stream and its norms, q/k/v before and after rotary and the grouped heads repeated, the attention output, the
    /// attention probabilities (heads × T), and the MLP's gate, up, activation and product; with checkpointing, each
    /// layer's input plus one layer's full set while it is recomputed. Plus the final hidden states and the loss kernel's
    /// chunk of logits.
    /// </summary>
    static long ActivationBytes(DecoderConfig c, int rows, int time, bool checkpointing)
    {
        long tokens = (long)rows * time;
        long kv = (long)c.NumKeyValueHeads * c.HeadDim;
        long perLayer = tokens * (8L * c.HiddenSize + 4 * kv + 4L * c.IntermediateSize + (long)c.NumAttentionHeads * time) * 4;
        long layers = checkpointing ? tokens * c.HiddenSize * 4L * c.NumHiddenLayers + perLayer : perLayer * c.NumHiddenLayers;
        return layers + tokens * c.HiddenSize * 4 * 2 + 1024L * c.VocabSize * 4;
    }

    /// <summary>A loss as it is, but not declared separable: the trainer takes the general lm_head path.</summary>
    sealed class GeneralPath(IPreferenceLoss inner) : IPreferenceLoss
    {
        public string Name => inner.Name;
        public LossRequirements Requirements => inner.Requirements with { SeparableByPair = false };
        public PreferenceLossOutput Compute(PreferenceForward forward) => inner.Compute(forward);
    }

    internal static double Median(List<double> values)
    {
        values.Sort();
        return values.Count == 0 ? double.NaN : values.Count % 2 == 1 ? values[values.Count / 2] : (values[values.Count / 2 - 1] + values[values.Count / 2]) / 2;
    }

    /// <summary>Each step's wall time and peak resident bytes (the kernel's high-water mark, reset after every step).</summary>
    internal sealed class StepProbe : ITrainingCallback
    {
        readonly Stopwatch _clock = new();
        public List<double> Seconds { get; } = [];
        public List<long> PeakBytes { get; } = [];

        public void Reset()
        {
            PeakNativeMemory.ResetPeak(trim: false); // the trainer hands freed pages back itself; trimming here would hide it if it did not
            _clock.Restart();
        }

        public void OnLog(TrainingProgress progress)
        {
            if (progress.IsEvaluation)
                return;
            Seconds.Add(_clock.Elapsed.TotalSeconds);
            PeakBytes.Add(PeakNativeMemory.PeakBytes());
            Reset();
        }
    }
}
