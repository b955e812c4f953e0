using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Alignment.Training;

/// <summary>How the learning rate moves after warm-up.</summary>
public enum LearningRateSchedule
{
    /// <summary>Constant after warm-up.</summary>
    Constant,

    /// <summary>Linear decay to 0 at the last step (transformers' default).</summary>
    Linear,

    /// <summary>Half-cosine decay to 0 at the last step.</summary>
    Cosine,
}

/// <summary>Stop when an evaluation metric stops improving.</summary>
/// <param name="Metric">Metric name as logged, for example <c>eval_loss</c> or <c>eval_rewards/accuracies</c>.</param>
/// <param name="Patience">Evaluations without improvement before stopping.</param>
/// <param name="GreaterIsBetter">Whether larger values are better.</param>
public sealed record EarlyStopping(string Metric, int Patience = 3, bool GreaterIsBetter = false);

/// <summary>One optimizer step's report.</summary>
/// <param name="Step">Optimizer steps done (1-based).</param>
/// <param name="TotalSteps">Planned optimizer steps.</param>
/// <param name="Metrics">The step's metrics, with TRL's names.</param>
/// <param name="Elapsed">Time since training (or resuming) started.</param>
public sealed record TrainingProgress(int Step, int TotalSteps, IReadOnlyDictionary<string, double> Metrics, TimeSpan Elapsed);

/// <summary>Optimisation and bookkeeping settings shared by every trainer, named after transformers' <c>TrainingArguments</c>.</summary>
public sealed record TrainingOptions
{
    /// <summary><c>learning_rate</c> (peak, after warm-up).</summary>
    public double LearningRate { get; init; } = 1e-6;

    /// <summary><c>weight_decay</c> of AdamW.</summary>
    public double WeightDecay { get; init; }

    /// <summary><c>warmup_ratio</c>: share of the steps with a linear warm-up from 0.</summary>
    public double WarmupRatio { get; init; }

    /// <summary><c>lr_scheduler_type</c>.</summary>
    public LearningRateSchedule Schedule { get; init; } = LearningRateSchedule.Linear;

    /// <summary><c>per_device_train_batch_size</c>: examples (pairs) per forward pass.</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary><c>gradient_accumulation_steps</c>: forward passes per optimizer step.</summary>
    public int GradientAccumulationSteps { get; init; } = 1;

    /// <summary><c>num_train_epochs</c>.</summary>
    public int Epochs { get; init; } = 1;

    /// <summary><c>max_steps</c>: optimizer steps, overriding the epochs when set.</summary>
    public int? MaxSteps { get; init; }

    /// <summary><c>max_grad_norm</c>: clip the global gradient norm to this (0 = no clipping; the norm is still reported).</summary>
    public double MaxGradNorm { get; init; } = 1.0;

    /// <summary><c>seed</c>: data order and every random draw derive from it, so the same seed gives the same metrics.</summary>
    public int Seed { get; init; } = 42;

    /// <summary><c>save_steps</c>: write a checkpoint every N optimizer steps (and always at the end); null = only at the end.</summary>
    public int? SaveSteps { get; init; }

    /// <summary><c>eval_steps</c>: evaluate every N optimizer steps (and at the end) when evaluation data is given.</summary>
    public int? EvalSteps { get; init; }

    /// <summary>Stop early on an evaluation metric.</summary>
    public EarlyStopping? EarlyStopping { get; init; }

    /// <summary><c>output_dir</c>: metrics.jsonl and checkpoints; null = nothing written.</summary>
    public string? OutputDir { get; init; }

    /// <summary>Skip (and log) a step whose loss or gradient is NaN/∞ instead of stopping with an error; the weights are never updated from it.</summary>
    public bool SkipNonFiniteSteps { get; init; }

    /// <summary>Also write every metric as TensorBoard scalars into this folder (TorchSharp's SummaryWriter); null = off.</summary>
    public string? TensorBoardDir { get; init; }

    /// <summary>Where progress is logged.</summary>
    public ILogger Logger { get; init; } = NullLogger.Instance;

    /// <summary>Receives every step's metrics.</summary>
    public IProgress<TrainingProgress>? Progress { get; init; }

    /// <summary>Checks the values.</summary>
    /// <exception cref="ArgumentException">A value is out of range; the message names it.</exception>
    public void Validate()
    {
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate))
            throw new ArgumentException($"learning_rate must be > 0, got {LearningRate}.", nameof(LearningRate));
        if (!(WeightDecay >= 0))
            throw new ArgumentException($"weight_decay must be >= 0, got {WeightDecay}.", nameof(WeightDecay));
        if (!(WarmupRatio >= 0 && WarmupRatio < 1))
            throw new ArgumentException($"warmup_ratio must be in [0, 1), got {WarmupRatio}.", nameof(WarmupRatio));
        if (BatchSize < 1)
            throw new ArgumentException($"batch_size must be >= 1, got {BatchSize}.", nameof(BatchSize));
        if (GradientAccumulationSteps < 1)
            throw new ArgumentException($"gradient_accumulation_steps must be >= 1, got {GradientAccumulationSteps}.", nameof(GradientAccumulationSteps));
        if (Epochs < 1)
            throw new ArgumentException($"num_train_epochs must be >= 1, got {Epochs}.", nameof(Epochs));
        if (MaxSteps is < 1)
            throw new ArgumentException($"max_steps must be >= 1, got {MaxSteps}.", nameof(MaxSteps));
        if (!(MaxGradNorm >= 0))
            throw new ArgumentException($"max_grad_norm must be >= 0, got {MaxGradNorm}.", nameof(MaxGradNorm));
        if (SaveSteps is < 1)
            throw new ArgumentException($"save_steps must be >= 1, got {SaveSteps}.", nameof(SaveSteps));
        if (EvalSteps is < 1)
            throw new ArgumentException($"eval_steps must be >= 1, got {EvalSteps}.", nameof(EvalSteps));
        if (EarlyStopping is { Patience: < 1 })
            throw new ArgumentException($"early stopping patience must be >= 1, got {EarlyStopping.Patience}.", nameof(EarlyStopping));
        ArgumentNullException.ThrowIfNull(Logger, nameof(Logger));
    }

    /// <summary>
    /// The learning rate of optimizer step <paramref name="step"/> (0-based) of <paramref name="totalSteps"/>, as
    /// transformers' schedulers compute it: warm-up <c>s / w</c> with <c>w = ⌈warmup_ratio · T⌉</c>, then linear
    /// <c>(T − s) / (T − w)</c>, cosine <c>½(1 + cos(π (s − w) / (T − w)))</c> or constant, times the peak rate.
    /// </summary>
    public double LearningRateAt(int step, int totalSteps)
    {
        int warmup = (int)Math.Ceiling(WarmupRatio * totalSteps);
        if (step < warmup)
            return LearningRate * step / Math.Max(1, warmup);
        double factor = Schedule switch
        {
            LearningRateSchedule.Constant => 1,
            LearningRateSchedule.Linear => Math.Max(0, (double)(totalSteps - step) / Math.Max(1, totalSteps - warmup)),
            _ => Math.Max(0, 0.5 * (1 + Math.Cos(Math.PI * (step - warmup) / Math.Max(1, totalSteps - warmup)))),
        };
        return LearningRate * factor;
    }
}
