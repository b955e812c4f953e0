namespace Alignment.Training;

/// <summary>How the learning rate moves (transformers' <c>lr_scheduler_type</c>).</summary>
public enum LearningRateSchedule
{
    /// <summary><c>constant</c>: the peak rate at every step, warm-up ignored (as transformers' <c>constant</c>).</summary>
    Constant,

    /// <summary><c>linear</c>: warm-up, then linear decay to 0 at the last step (transformers' default).</summary>
    Linear,

    /// <summary><c>cosine</c>: warm-up, then half-cosine decay to 0 at the last step.</summary>
    Cosine,

    /// <summary><c>constant_with_warmup</c>: warm-up, then the peak rate.</summary>
    ConstantWithWarmup,

    /// <summary><c>cosine_with_min_lr</c>: warm-up, then half-cosine decay to <c>min_lr</c> (or <c>min_lr_rate</c> × the peak) at the last step.</summary>
    CosineWithMinLr,
}

/// <summary>Stop when an evaluation metric stops improving.</summary>
/// <param name="Metric">Metric name as logged, for example <c>eval_loss</c> or <c>eval_rewards/accuracies</c>.</param>
/// <param name="Patience">Evaluations without improvement before stopping.</param>
/// <param name="GreaterIsBetter">Whether larger values are better.</param>
public sealed record EarlyStopping(string Metric, int Patience = 3, bool GreaterIsBetter = false);

/// <summary>Optimisation and bookkeeping settings shared by every trainer, named after transformers' <c>TrainingArguments</c>.</summary>
public sealed record TrainingOptions
{
    /// <summary><c>learning_rate</c> (peak, after warm-up).</summary>
    public double LearningRate { get; init; } = 1e-6;

    /// <summary><c>weight_decay</c> of AdamW.</summary>
    public double WeightDecay { get; init; }

    /// <summary><c>warmup_ratio</c>: share of the steps with a linear warm-up from 0.</summary>
    public double WarmupRatio { get; init; }

    /// <summary><c>warmup_steps</c>: steps of linear warm-up from 0; when above 0 it is used instead of <see cref="WarmupRatio"/>.</summary>
    public int WarmupSteps { get; init; }

    /// <summary><c>min_lr</c> of <see cref="LearningRateSchedule.CosineWithMinLr"/>: the rate at the last step.</summary>
    public double? MinLr { get; init; }

    /// <summary><c>min_lr_rate</c> of <see cref="LearningRateSchedule.CosineWithMinLr"/>: the rate at the last step as a share of the peak.</summary>
    public double? MinLrRate { get; init; }

    /// <summary><c>lr_scheduler_type</c>.</summary>
    public LearningRateSchedule Schedule { get; init; } = LearningRateSchedule.Linear;

    /// <summary><c>per_device_train_batch_size</c>: examples (pairs) per forward pass; prompts per rollout for <c>PpoLoop</c>.</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary><c>gradient_accumulation_steps</c>: forward passes per optimizer step.</summary>
    public int GradientAccumulationSteps { get; init; } = 1;

    /// <summary><c>num_train_epochs</c>.</summary>
    public int Epochs { get; init; } = 1;

    /// <summary><c>max_steps</c>: training steps (optimizer steps; rollout-and-update iterations for <c>PpoLoop</c>), overriding the epochs when set.</summary>
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

    /// <summary>
    /// <c>save_total_limit</c>: keep only the newest N complete checkpoints (and the best one, when evaluation with early
    /// stopping picks a best); null = keep all.
    /// </summary>
    public int? SaveTotalLimit { get; init; }

    /// <summary>
    /// Resume even when the options differ from the checkpoint's configuration snapshot (learning rate, batch size, seed,
    /// schedule, the loss, the amount of data …). Off by default: a resume with other options refuses and lists the differences.
    /// </summary>
    public bool ResumeWithChangedConfig { get; init; }

    /// <summary>Skip (and log) a step whose loss or gradient is NaN/∞ instead of stopping with an error; the weights are never updated from it.</summary>
    public bool SkipNonFiniteSteps { get; init; }

    /// <summary>Also write every metric as TensorBoard scalars into this folder (TorchSharp's SummaryWriter); null = off.</summary>
    public string? TensorBoardDir { get; init; }

    /// <summary><c>padding_value</c>: the token id written into padding (never scored); use the tokenizer's pad id.</summary>
    public long PaddingValue { get; init; }

    /// <summary>
    /// Threads of TorchSharp's CPU operations, set for the whole process when training starts (<c>align --num-threads</c>);
    /// null keeps the process's setting (TorchSharp's default: the physical cores it sees). The first log line reports it.
    /// </summary>
    public int? NumThreads { get; init; }

    /// <summary>
    /// <c>gradient_checkpointing</c>: keep only each decoder layer's input for backward and run the layer again there —
    /// activation memory of one layer instead of all, for about one more forward pass. Gradients equal the plain run's
    /// to float precision.
    /// </summary>
    public bool GradientCheckpointing { get; init; }

    /// <summary>
    /// <c>bf16</c>: compute in bfloat16 (autocast: the embeddings' output and every weight used as a bfloat16 copy) while
    /// the weights, their gradients and AdamW's state stay float32 — or, for weights loaded in bfloat16, while AdamW keeps
    /// float32 master copies. The reference computes in bfloat16 too.
    /// </summary>
    public bool Bf16 { get; init; }

    /// <summary>
    /// <c>fp16</c>: as <see cref="Bf16"/> in float16, with dynamic loss scaling as PyTorch's <c>GradScaler</c> does it
    /// (scale 2¹⁶, halved and the update skipped when a gradient overflows, doubled after 2000 clean updates).
    /// </summary>
    public bool Fp16 { get; init; }

    /// <summary>
    /// How the run finds its processes: <see cref="Distributed.DistributedBackend.Auto"/> (default) trains data-parallel
    /// over MPI when <c>mpirun</c>/<c>srun</c> started the process and alone otherwise (<c>align --distributed</c>).
    /// Under MPI, <see cref="BatchSize"/> is per process: the global batch is BatchSize × processes ×
    /// <see cref="GradientAccumulationSteps"/>.
    /// </summary>
    public Distributed.DistributedBackend Distributed { get; init; }

    /// <summary>The MPI library's file (<c>align --mpi-library</c>); null finds Open MPI, MPICH or MS-MPI by the launcher.</summary>
    public string? MpiLibrary { get; init; }

    /// <summary><c>ddp_bucket_cap_mb</c>: gradients are averaged across processes in flat buckets of at most this many MiB (25).</summary>
    public int DdpBucketCapMb { get; init; } = 25;

    /// <summary>The activations' dtype the options ask for, or null to compute in the weights' own.</summary>
    internal TorchSharp.torch.ScalarType? ComputeDType => Bf16 ? TorchSharp.torch.ScalarType.BFloat16 : Fp16 ? TorchSharp.torch.ScalarType.Float16 : null;

    /// <summary>Checks the values, reporting every one out of range at once.</summary>
    /// <exception cref="ArgumentException">A value is out of range; the message names each.</exception>
    public void Validate() => new OptionErrors().Include(Problems()).ThrowIfAny();

    /// <summary>Every problem with the values, for options that contain these.</summary>
    internal IEnumerable<string> Problems() => new OptionErrors()
        .Check(LearningRate > 0 && LearningRate <= 1e6, $"learning_rate must be in (0, 1e6], got {LearningRate}.")
        .Check(WeightDecay >= 0 && !double.IsInfinity(WeightDecay), $"weight_decay must be a finite number >= 0, got {WeightDecay}.")
        .Check(WarmupRatio >= 0 && WarmupRatio < 1, $"warmup_ratio must be in [0, 1), got {WarmupRatio}.")
        .Check(WarmupSteps >= 0, $"warmup_steps must be >= 0, got {WarmupSteps}.")
        .Check(Enum.IsDefined(Schedule), $"lr_scheduler_type {Schedule} is not a schedule.")
        .Check(Schedule != LearningRateSchedule.CosineWithMinLr || (MinLr is null) != (MinLrRate is null),
            "cosine_with_min_lr needs exactly one of min_lr and min_lr_rate.")
        .Check(MinLr is null || (MinLr >= 0 && MinLr <= LearningRate), $"min_lr must be in [0, learning_rate], got {MinLr}.")
        .Check(MinLrRate is null or >= 0 and <= 1, $"min_lr_rate must be in [0, 1], got {MinLrRate}.")
        .Check(Schedule == LearningRateSchedule.CosineWithMinLr || MinLr is null && MinLrRate is null,
            $"min_lr and min_lr_rate apply to cosine_with_min_lr only, not {Schedule}.")
        .Check(BatchSize >= 1, $"per_device_train_batch_size must be >= 1, got {BatchSize}.")
        .Check(GradientAccumulationSteps >= 1, $"gradient_accumulation_steps must be >= 1, got {GradientAccumulationSteps}.")
        .Check(Epochs >= 1, $"num_train_epochs must be >= 1, got {Epochs}.")
        .Check(MaxSteps is not < 1, $"max_steps must be >= 1, got {MaxSteps}.")
        .Check(MaxGradNorm >= 0, $"max_grad_norm must be >= 0, got {MaxGradNorm}.")
        .Check(SaveSteps is not < 1, $"save_steps must be >= 1, got {SaveSteps}.")
        .Check(EvalSteps is not < 1, $"eval_steps must be >= 1, got {EvalSteps}.")
        .Check(EarlyStopping is not { Patience: < 1 }, $"early stopping patience must be >= 1, got {EarlyStopping?.Patience}.")
        .Check(EarlyStopping is null || !string.IsNullOrWhiteSpace(EarlyStopping.Metric), "early stopping needs a metric name.")
        .Check(SaveTotalLimit is not < 1, $"save_total_limit must be >= 1, got {SaveTotalLimit}.")
        .Check(BatchSize <= 1 << 20, $"per_device_train_batch_size must be at most {1 << 20}, got {BatchSize}.")
        .Check(PaddingValue >= 0, $"padding_value must be a token id >= 0, got {PaddingValue}.")
        .Check(!(Bf16 && Fp16), "bf16 and fp16 cannot both be set.")
        .Check(NumThreads is null or (>= 1 and <= 1024), $"num_threads must be in [1, 1024], got {NumThreads}.")
        .Check(DdpBucketCapMb is >= 1 and <= 1 << 16, $"ddp_bucket_cap_mb must be in [1, 65536], got {DdpBucketCapMb}.")
        .Check(Enum.IsDefined(Distributed), $"distributed must be auto, none or mpi, got {Distributed}.")
        .Messages;

    /// <summary>
    /// The learning rate of optimizer step <paramref name="step"/> (0-based) of <paramref name="totalSteps"/>, as
    /// transformers' schedulers compute it: warm-up <c>s / w</c> with <c>w = warmup_steps</c> when above 0, else
    /// <c>⌈warmup_ratio · T⌉</c>; then, with progress <c>p = (s − w) / (T − w)</c>, linear <c>1 − p</c>, cosine
    /// <c>½(1 + cos πp)</c>, cosine with a floor <c>½(1 + cos πp)(1 − m) + m</c> where <c>m = min_lr_rate</c> or
    /// <c>min_lr / learning_rate</c>, constant 1 — times the peak rate. <c>constant</c> has no warm-up.
    /// </summary>
    public double LearningRateAt(int step, int totalSteps)
    {
        if (Schedule == LearningRateSchedule.Constant)
            return LearningRate;
        int warmup = WarmupSteps > 0 ? WarmupSteps : (int)Math.Ceiling(WarmupRatio * totalSteps);
        if (step < warmup)
            return LearningRate * step / Math.Max(1, warmup);
        double progress = (double)(step - warmup) / Math.Max(1, totalSteps - warmup);
        double cosine = 0.5 * (1 + Math.Cos(Math.PI * progress));
        double floor = MinLrRate ?? (MinLr ?? 0) / LearningRate;
        double factor = Schedule switch
        {
            LearningRateSchedule.ConstantWithWarmup => 1,
            LearningRateSchedule.Linear => (double)(totalSteps - step) / Math.Max(1, totalSteps - warmup),
            LearningRateSchedule.CosineWithMinLr => cosine * (1 - floor) + floor,
            _ => cosine,
        };
        return LearningRate * Math.Max(0, factor);
    }
}
