using Alignment.Data;
using Alignment.Losses;
using Alignment.Models;
using Microsoft.Extensions.Logging;

namespace Alignment.Training;

/// <summary>
/// The fluent entry point: <c>Align.Policy(policy).Reference(reference).Loss(PreferenceLosses.Dpo(beta: 0.1))
/// .Data(train, eval).Optimizer(lr: 5e-7, warmup: 0.1).Batch(size: 8, accumulate: 4).Checkpoints(dir)
/// .Logging(logger).Build().Train(cancellationToken)</c>. Each call only fills <see cref="TrainingOptions"/> or a
/// trainer argument; <see cref="PreferenceTrainer"/> does the work.
/// </summary>
public static class Align
{
    /// <summary>Starts a preference-training run for <paramref name="policy"/>.</summary>
    public static AlignmentBuilder Policy(PolicyModel policy) => new(policy ?? throw new ArgumentNullException(nameof(policy)));
}

/// <summary>Collects the pieces of a preference-training run.</summary>
public sealed class AlignmentBuilder
{
    readonly PolicyModel _policy;
    ICausalLM? _reference;
    ReferenceLogProbs? _precomputed;
    IPreferenceLoss? _loss;
    IReadOnlyList<TokenizedPair>? _train, _eval;
    TrainingOptions _options = new();
    long _padTokenId;

    internal AlignmentBuilder(PolicyModel policy) => _policy = policy;

    /// <summary>The reference model (for example <see cref="PolicyModel.CreateReference"/>).</summary>
    public AlignmentBuilder Reference(ICausalLM reference) { _reference = reference; return this; }

    /// <summary>Precomputed reference log-probabilities instead of a live reference.</summary>
    public AlignmentBuilder Reference(ReferenceLogProbs precomputed) { _precomputed = precomputed; return this; }

    /// <summary>The objective.</summary>
    public AlignmentBuilder Loss(IPreferenceLoss loss) { _loss = loss; return this; }

    /// <summary>Training (and optional evaluation) pairs.</summary>
    public AlignmentBuilder Data(IReadOnlyList<TokenizedPair> train, IReadOnlyList<TokenizedPair>? eval = null) { _train = train; _eval = eval; return this; }

    /// <summary>AdamW settings: peak learning rate, warm-up ratio, weight decay, schedule.</summary>
    public AlignmentBuilder Optimizer(double lr, double warmup = 0, double weightDecay = 0, LearningRateSchedule schedule = LearningRateSchedule.Linear)
    {
        _options = _options with { LearningRate = lr, WarmupRatio = warmup, WeightDecay = weightDecay, Schedule = schedule };
        return this;
    }

    /// <summary>Pairs per forward pass and forward passes per optimizer step.</summary>
    public AlignmentBuilder Batch(int size, int accumulate = 1) { _options = _options with { BatchSize = size, GradientAccumulationSteps = accumulate }; return this; }

    /// <summary>Length of training: epochs, or optimizer steps when <paramref name="maxSteps"/> is set.</summary>
    public AlignmentBuilder Duration(int epochs = 1, int? maxSteps = null) { _options = _options with { Epochs = epochs, MaxSteps = maxSteps }; return this; }

    /// <summary>Where metrics and checkpoints go, and how often to checkpoint.</summary>
    public AlignmentBuilder Checkpoints(string directory, int? everySteps = null) { _options = _options with { OutputDir = directory, SaveSteps = everySteps }; return this; }

    /// <summary>Logger and progress receiver.</summary>
    public AlignmentBuilder Logging(ILogger logger, IProgress<TrainingProgress>? progress = null) { _options = _options with { Logger = logger, Progress = progress }; return this; }

    /// <summary>The seed of data order and random draws.</summary>
    public AlignmentBuilder Seed(int seed) { _options = _options with { Seed = seed }; return this; }

    /// <summary>Any other option, applied to the options collected so far.</summary>
    public AlignmentBuilder Options(Func<TrainingOptions, TrainingOptions> change) { _options = change(_options); return this; }

    /// <summary>The padding token id of the tokenizer.</summary>
    public AlignmentBuilder PadTokenId(long id) { _padTokenId = id; return this; }

    /// <summary>Checks the pieces and creates the run.</summary>
    /// <exception cref="InvalidOperationException">No loss or no training data.</exception>
    /// <exception cref="ArgumentException">Options out of range, or the loss needs a reference that is missing.</exception>
    public AlignmentRun Build()
    {
        IPreferenceLoss loss = _loss ?? throw new InvalidOperationException("Call Loss(...) before Build().");
        IReadOnlyList<TokenizedPair> train = _train ?? throw new InvalidOperationException("Call Data(...) before Build().");
        return new AlignmentRun(new PreferenceTrainer(_policy, loss, _options, _reference, _precomputed, _padTokenId), train, _eval);
    }
}

/// <summary>A built run.</summary>
public sealed class AlignmentRun
{
    readonly IReadOnlyList<TokenizedPair> _train;
    readonly IReadOnlyList<TokenizedPair>? _eval;

    internal AlignmentRun(PreferenceTrainer trainer, IReadOnlyList<TokenizedPair> train, IReadOnlyList<TokenizedPair>? eval)
    {
        Trainer = trainer;
        _train = train;
        _eval = eval;
    }

    /// <summary>The trainer behind the run.</summary>
    public PreferenceTrainer Trainer { get; }

    /// <summary>Trains (resuming from the newest checkpoint when <paramref name="resume"/>).</summary>
    public TrainingResult Train(CancellationToken cancellationToken = default, bool resume = false) => Trainer.Train(_train, _eval, resume, cancellationToken);
}
