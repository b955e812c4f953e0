namespace Alignment.Cli.Arguments;

/// <summary>The engine's options (transformers' <c>TrainingArguments</c> names), with a trainer's defaults.</summary>
internal sealed class TrainingArguments : IArgumentGroup
{
    public Option<string?> Output { get; } = CliOption.Text("output", "Output folder: the trained model (a Hugging Face folder), metrics.jsonl and checkpoints.", null, "output_dir", "output-dir");
    public Option<bool> Resume { get; } = CliOption.Flag("resume", "Continue from the newest complete checkpoint in the output folder.");
    public Option<string?> LoggingDir { get; } = CliOption.Text("logging-dir", "Also write every metric as TensorBoard scalars into this folder.", null);
    readonly Option<double?> _learningRate, _warmupRatio, _weightDecay, _maxGradNorm;
    readonly Option<int?> _warmupSteps = CliOption.Int("warmup-steps", "Steps of linear warm-up; above 0 it replaces --warmup-ratio.", 0);
    readonly Option<double?> _minLr = CliOption.Double("min-lr", "cosine_with_min_lr: the learning rate at the last step.", null);
    readonly Option<double?> _minLrRate = CliOption.Double("min-lr-rate", "cosine_with_min_lr: the learning rate at the last step as a share of the peak.", null);
    readonly Option<string?> _schedule;
    readonly Option<int?> _batchSize, _accumulation, _epochs, _maxSteps, _seed, _saveSteps, _evalSteps;
    readonly Option<int?> _saveTotalLimit = CliOption.Int("save-total-limit", "Keep only the newest N checkpoints (and the best one).", null);
    readonly Option<bool> _changedConfig = CliOption.Flag("resume-with-changed-config", "Resume even when the options differ from the checkpoint's.");
    readonly Option<bool> _skipNonFinite = CliOption.Flag("skip-non-finite-steps", "Skip (and log) a step whose loss or gradient is NaN/∞ instead of stopping.");
    readonly Option<string?> _bestMetric = CliOption.Text("metric-for-best-model", "Stop early when this evaluation metric (eval_loss, eval_rewards/accuracies …) stops improving.");
    readonly Option<int?> _patience = CliOption.Int("early-stopping-patience", "Evaluations without improvement before stopping early.", null);
    readonly Option<bool> _greaterIsBetter = CliOption.Flag("greater-is-better", "The early-stopping metric improves upwards.");
    readonly Option<bool> _bf16 = CliOption.Flag("bf16", "Compute in bfloat16 with float32 master weights and optimizer state (autocast).");
    readonly Option<bool> _fp16 = CliOption.Flag("fp16", "Compute in float16 with float32 master weights, optimizer state and dynamic loss scaling.");
    readonly Option<int?> _bucket = CliOption.Int("ddp-bucket-cap-mb", "Under MPI, gradients are averaged across processes in buckets of at most this many MiB.", 25);
    readonly Option<bool> _checkpointing = CliOption.Flag("gradient-checkpointing",
        "Keep only each layer's input for backward and recompute the layer there: activation memory of one layer, ~1 more forward pass.");

    /// <param name="defaults">The trainer's defaults, shown in <c>--help</c>.</param>
    /// <param name="stepsMeaning">What one step is, for the help of <c>--max-steps</c>.</param>
    /// <param name="batchMeaning">What the batch size counts.</param>
    public TrainingArguments(TrainingOptions defaults, string stepsMeaning = "optimizer steps", string batchMeaning = "examples per forward pass")
    {
        _learningRate = CliOption.Double("learning-rate", "Peak learning rate of AdamW.", defaults.LearningRate);
        _schedule = CliOption.Choice("lr-scheduler-type", "Learning-rate schedule (transformers' names; constant ignores warm-up).", ScheduleName(defaults.Schedule),
            Enum.GetValues<LearningRateSchedule>().Select(ScheduleName).ToArray());
        _warmupRatio = CliOption.Double("warmup-ratio", "Share of the steps with a linear warm-up.", defaults.WarmupRatio);
        _weightDecay = CliOption.Double("weight-decay", "AdamW weight decay.", defaults.WeightDecay);
        _maxGradNorm = CliOption.Double("max-grad-norm", "Clip the global gradient norm to this (0 = no clipping).", defaults.MaxGradNorm);
        _batchSize = CliOption.Int("batch-size", $"Per-device batch size: {batchMeaning}.", defaults.BatchSize, "per_device_train_batch_size", "per-device-train-batch-size");
        _accumulation = CliOption.Int("gradient-accumulation-steps", "Forward passes whose gradients are summed before each optimizer step.", defaults.GradientAccumulationSteps);
        _epochs = CliOption.Int("epochs", "Passes over the training data (when --max-steps is not given).", defaults.Epochs, "num_train_epochs", "num-train-epochs");
        _maxSteps = CliOption.Int("max-steps", $"Training steps ({stepsMeaning}); overrides --epochs.", defaults.MaxSteps);
        _seed = CliOption.Int("seed", "Seed of the data order and of every random draw.", defaults.Seed);
        _saveSteps = CliOption.Int("save-steps", "Write a checkpoint every N steps (and at each epoch end and the end).", defaults.SaveSteps);
        _evalSteps = CliOption.Int("eval-steps", "Evaluate every N steps (and at the end) when evaluation data is given.", defaults.EvalSteps);
        Output.Required = true;
    }

    public IEnumerable<Option> Options => new Option[] { Output, Resume, LoggingDir, _learningRate, _schedule, _warmupRatio, _warmupSteps, _minLr, _minLrRate, _weightDecay, _maxGradNorm,
                     _batchSize, _accumulation, _epochs, _maxSteps, _seed, _saveSteps, _evalSteps, _skipNonFinite, _bestMetric, _patience, _greaterIsBetter, _saveTotalLimit, _changedConfig, _checkpointing, _bf16, _fp16, _bucket };

    /// <summary>transformers' name of a schedule: <c>cosine_with_min_lr</c> for <see cref="LearningRateSchedule.CosineWithMinLr"/>.</summary>
    static string ScheduleName(LearningRateSchedule schedule) =>
        string.Concat(schedule.ToString().Select((c, i) => char.IsUpper(c) && i > 0 ? "_" + char.ToLowerInvariant(c) : char.ToLowerInvariant(c).ToString()));

    /// <summary>Early stopping when a metric or a patience is given (transformers' EarlyStoppingCallback), else null.</summary>
    EarlyStopping? EarlyStoppingOf(ParseResult parse)
    {
        string? metric = parse.GetValue(_bestMetric);
        int? patience = parse.GetValue(_patience);
        if (metric is null && patience is null)
            return null;
        var stopping = new EarlyStopping(metric ?? "eval_loss", GreaterIsBetter: parse.GetValue(_greaterIsBetter));
        return patience is { } value ? stopping with { Patience = value } : stopping;
    }

    /// <summary>The options as given, validated unless the caller validates them as part of larger options.</summary>
    public TrainingOptions Read(ParseResult parse, bool validate = true)
    {
        var options = new TrainingOptions
        {
            LearningRate = parse.GetValue(_learningRate)!.Value,
            Schedule = Enum.GetValues<LearningRateSchedule>().First(schedule => ScheduleName(schedule) == parse.GetValue(_schedule)),
            WarmupRatio = parse.GetValue(_warmupRatio)!.Value,
            WarmupSteps = parse.GetValue(_warmupSteps)!.Value,
            MinLr = parse.GetValue(_minLr),
            MinLrRate = parse.GetValue(_minLrRate),
            WeightDecay = parse.GetValue(_weightDecay)!.Value,
            MaxGradNorm = parse.GetValue(_maxGradNorm)!.Value,
            BatchSize = parse.GetValue(_batchSize)!.Value,
            GradientAccumulationSteps = parse.GetValue(_accumulation)!.Value,
            Epochs = parse.GetValue(_epochs)!.Value,
            MaxSteps = parse.GetValue(_maxSteps),
            Seed = parse.GetValue(_seed)!.Value,
            SaveSteps = parse.GetValue(_saveSteps),
            EvalSteps = parse.GetValue(_evalSteps),
            SkipNonFiniteSteps = parse.GetValue(_skipNonFinite),
            SaveTotalLimit = parse.GetValue(_saveTotalLimit),
            ResumeWithChangedConfig = parse.GetValue(_changedConfig),
            EarlyStopping = EarlyStoppingOf(parse),
            OutputDir = parse.GetValue(Output),
            TensorBoardDir = parse.GetValue(LoggingDir),
            GradientCheckpointing = parse.GetValue(_checkpointing),
            Bf16 = parse.GetValue(_bf16),
            Fp16 = parse.GetValue(_fp16),
            DdpBucketCapMb = parse.GetValue(_bucket)!.Value,
            Distributed = AlignCli.DistributedOf(parse),
            MpiLibrary = parse.GetValue(AlignCli.MpiLibrary),
        };
        if (validate)
            options.Validate();
        return options;
    }
}
