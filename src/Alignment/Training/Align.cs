using System.Diagnostics.CodeAnalysis;
using Alignment.Data;
using Alignment.Losses;
using Alignment.Models;
using Alignment.Rl;
using Alignment.Scoring;
using Alignment.Tokenization;
using Microsoft.Extensions.Logging;

namespace Alignment.Training;

/// <summary>
/// The one front door to every trainer:
/// <code>
/// Align.Policy(policy).Sft(examples)                                        // SftTrainer
/// Align.Policy(policy).Reference(reference).Loss(PreferenceLosses.Dpo()).Data(pairs)   // PreferenceTrainer (paired)
/// Align.Policy(policy).Reference(reference).Loss(PreferenceLosses.Kto()).Data(examples) // PreferenceTrainer (unpaired)
/// Align.Policy(policy).Reference(reference).Rollouts(reward, tokenizer, prompts, new PpoOptions { Algorithm = RlAlgorithm.Grpo }) // PpoLoop
/// Align.RewardModel(model).Data(pairs)                                      // RewardTrainer
/// Align.Pipeline(baseFolder, workFolder).Sft(...).Preference(...).Run()      // SFT → preference, stage by stage
/// </code>
/// followed by any of <c>.Optimizer(...)</c>, <c>.Batch(...)</c>, <c>.Duration(...)</c>, <c>.Checkpoints(...)</c>,
/// <c>.Logging(...)</c>, <c>.Callbacks(...)</c>, then <c>.Build().Train(cancellationToken)</c>. Each call only fills the
/// chosen trainer's <see cref="TrainingOptions"/> (starting from that trainer's defaults) or a constructor argument.
/// </summary>
public static class Align
{
    /// <summary>Starts a run that trains <paramref name="policy"/>: SFT, preference training, or PPO/GRPO/RLOO.</summary>
    public static AlignmentBuilder Policy(PolicyModel policy) => new(policy ?? throw new ArgumentNullException(nameof(policy)), null);

    /// <summary>Starts a reward-modelling run for <paramref name="model"/>.</summary>
    public static AlignmentBuilder RewardModel(RewardModel model) => new(null, model ?? throw new ArgumentNullException(nameof(model)));

    /// <summary>Starts a pipeline of stages from a base model folder (see <see cref="Training.Pipeline"/>).</summary>
    public static Pipeline Pipeline(string baseModelFolder, string workFolder, ModelLoadOptions? loadOptions = null, ILogger? logger = null,
        IEnumerable<ITrainingCallback>? callbacks = null) => new(baseModelFolder, workFolder, loadOptions, logger, callbacks);
}

/// <summary>Collects the pieces of a training run; <see cref="Build"/> picks the trainer from what was given.</summary>
public sealed class AlignmentBuilder
{
    readonly PolicyModel? _policy;
    readonly RewardModel? _rewardModel;
    readonly List<Func<TrainingOptions, TrainingOptions>> _changes = [];
    readonly List<ITrainingCallback> _callbacks = [];
    ICausalLM? _reference;
    ReferenceLogProbs? _precomputed;
    IPreferenceLoss? _loss;
    SftMix? _sftMix;
    ILogger? _logger;
    double _centerRewards;
    TrainingOptions? _defaults;
    Func<TrainingOptions, Func<bool, CancellationToken, TrainingResult>>? _run;

    internal AlignmentBuilder(PolicyModel? policy, RewardModel? rewardModel)
    {
        _policy = policy;
        _rewardModel = rewardModel;
    }

    /// <summary>The reference model (for example <see cref="PolicyModel.CreateReference"/>).</summary>
    public AlignmentBuilder Reference(ICausalLM reference) { _reference = reference; return this; }

    /// <summary>Precomputed reference log-probabilities instead of a live reference.</summary>
    public AlignmentBuilder Reference(ReferenceLogProbs precomputed) { _precomputed = precomputed; return this; }

    /// <summary>The preference objective, for <see cref="Data(IReadOnlyList{TokenizedPair}, IReadOnlyList{TokenizedPair}?)"/>.</summary>
    public AlignmentBuilder Loss(IPreferenceLoss loss) { _loss = loss; return this; }

    /// <summary>SFT data mixed into preference training against forgetting.</summary>
    public AlignmentBuilder SftMix(SftMix mix) { _sftMix = mix; return this; }

    /// <summary><c>center_rewards_coefficient</c> of reward modelling.</summary>
    public AlignmentBuilder CenterRewards(double coefficient) { _centerRewards = coefficient; return this; }

    /// <summary>
    /// Pairs: preference training with <see cref="Loss"/> for a policy (<see cref="PreferenceTrainer"/>), Bradley–Terry
    /// training for a reward model (<see cref="RewardTrainer"/>).
    /// </summary>
    public AlignmentBuilder Data(IReadOnlyList<TokenizedPair> train, IReadOnlyList<TokenizedPair>? eval = null)
    {
        _run = options =>
        {
            if (_rewardModel is not null)
            {
                var reward = new RewardTrainer(_rewardModel, options, _centerRewards, _logger, _callbacks);
                return (resume, cancel) => reward.Train(train, eval, resume, cancel);
            }
            PreferenceTrainer trainer = Preference(options);
            return (resume, cancel) => trainer.Train(train, eval, resume, cancel);
        };
        return this;
    }

    /// <summary>Unpaired examples (KTO, apo_zero_unpaired) for preference training with <see cref="Loss"/>.</summary>
    public AlignmentBuilder Data(IReadOnlyList<TokenizedCompletion> train, IReadOnlyList<TokenizedCompletion>? eval = null)
    {
        _run = options =>
        {
            PreferenceTrainer trainer = Preference(options);
            return (resume, cancel) => trainer.Train(train, eval, resume, cancel);
        };
        return this;
    }

    /// <summary>Supervised fine-tuning on prompt/completion examples (<see cref="SftTrainer"/>), optionally packed.</summary>
    public AlignmentBuilder Sft(IReadOnlyList<TokenizedCompletion> train, IReadOnlyList<TokenizedCompletion>? eval = null, bool packing = false)
    {
        _run = options =>
        {
            var trainer = new SftTrainer(Policy, options, packing, _logger, _callbacks);
            return (resume, cancel) => trainer.Train(train, eval, resume, cancel);
        };
        return this;
    }

    /// <summary>
    /// On-policy RL (<see cref="PpoLoop"/>: PPO, GRPO or RLOO as <paramref name="options"/> says) against
    /// <paramref name="reward"/>; the builder's optimisation settings fill <see cref="PpoOptions.Training"/>.
    /// </summary>
    [SuppressMessage("ApiDesign", "RS0026", Justification = "The overloads differ in their first parameter's type (a reward model or reward functions), so no call is ambiguous.")]
    public AlignmentBuilder Rollouts(IRewardModel reward, ModelTokenizer tokenizer, IReadOnlyList<string> prompts, PpoOptions? options = null,
        IChatTemplate? template = null, IReadOnlyList<string>? eval = null)
    {
        ArgumentNullException.ThrowIfNull(reward);
        ArgumentNullException.ThrowIfNull(prompts);
        return Rollouts([RewardFunction.From(PpoLoop.NameOf(reward), reward)], tokenizer, prompts.Select(p => new PromptExample(p)).ToList(), options, template,
            eval?.Select(p => new PromptExample(p)).ToList());
    }

    /// <summary>
    /// On-policy RL (<see cref="PpoLoop"/>) against reward functions (TRL's <c>reward_funcs</c>, weighted by
    /// <see cref="PpoOptions.RewardWeights"/>) on prompts with their dataset columns; without <see cref="Reference(ICausalLM)"/>,
    /// β (<see cref="PpoOptions.KlCoef"/>) must be 0.
    /// </summary>
    [SuppressMessage("ApiDesign", "RS0026", Justification = "The overloads differ in their first parameter's type (a reward model or reward functions), so no call is ambiguous.")]
    public AlignmentBuilder Rollouts(IReadOnlyList<IRewardFunction> rewards, ModelTokenizer tokenizer, IReadOnlyList<PromptExample> prompts, PpoOptions? options = null,
        IChatTemplate? template = null, IReadOnlyList<PromptExample>? eval = null)
    {
        PpoOptions rl = options ?? new PpoOptions();
        _run = training =>
        {
            if (_reference is null && (rl.KlCoef != 0 || rl.KlTarget is not null))
                throw new InvalidOperationException($"Call Reference(...) before Build(): kl_coef {rl.KlCoef} needs a reference model (or set it to 0).");
            var loop = new PpoLoop(Policy, _reference, rewards, tokenizer, template, rl with { Training = training }, logger: _logger, callbacks: _callbacks);
            return (resume, cancel) => loop.Train(prompts, eval, resume, cancel);
        };
        _defaults = rl.Training;
        return this;
    }

    /// <summary>AdamW settings: peak learning rate, warm-up ratio, weight decay, schedule.</summary>
    public AlignmentBuilder Optimizer(double lr, double warmup = 0, double weightDecay = 0, LearningRateSchedule schedule = LearningRateSchedule.Linear) =>
        Options(o => o with { LearningRate = lr, WarmupRatio = warmup, WeightDecay = weightDecay, Schedule = schedule });

    /// <summary>Examples per forward pass and forward passes per optimizer step.</summary>
    public AlignmentBuilder Batch(int size, int accumulate = 1) => Options(o => o with { BatchSize = size, GradientAccumulationSteps = accumulate });

    /// <summary>Length of training: epochs, or steps when <paramref name="maxSteps"/> is set.</summary>
    public AlignmentBuilder Duration(int epochs = 1, int? maxSteps = null) => Options(o => o with { Epochs = epochs, MaxSteps = maxSteps });

    /// <summary>Where metrics and checkpoints go, and how often to checkpoint.</summary>
    public AlignmentBuilder Checkpoints(string directory, int? everySteps = null) => Options(o => o with { OutputDir = directory, SaveSteps = everySteps });

    /// <summary>The seed of data order and random draws.</summary>
    public AlignmentBuilder Seed(int seed) => Options(o => o with { Seed = seed });

    /// <summary>The padding token id of the tokenizer (<c>padding_value</c>).</summary>
    public AlignmentBuilder PadTokenId(long id) => Options(o => o with { PaddingValue = id });

    /// <summary>Any other option, applied after the changes collected so far.</summary>
    public AlignmentBuilder Options(Func<TrainingOptions, TrainingOptions> change) { _changes.Add(change); return this; }

    /// <summary>Where steps, checkpoints and warnings are logged.</summary>
    public AlignmentBuilder Logging(ILogger logger) { _logger = logger; return this; }

    /// <summary>Receivers of every step's metrics (beyond metrics.jsonl and TensorBoard).</summary>
    public AlignmentBuilder Callbacks(params ITrainingCallback[] callbacks) { _callbacks.AddRange(callbacks); return this; }

    /// <summary>A receiver of every training step's report.</summary>
    public AlignmentBuilder Progress(IProgress<TrainingProgress> progress) => Callbacks(new ProgressCallback(progress));

    /// <summary>Checks the pieces and creates the run.</summary>
    /// <exception cref="InvalidOperationException">Nothing to train on was given, or a piece the trainer needs is missing.</exception>
    /// <exception cref="ArgumentException">Options out of range, or the loss needs a reference that is missing.</exception>
    public AlignmentRun Build()
    {
        var run = _run ?? throw new InvalidOperationException("Call Data(...), Sft(...) or Rollouts(...) before Build().");
        TrainingOptions options = _changes.Aggregate(_defaults ?? DefaultsOfTrainer(), (o, change) => change(o));
        options.Validate();
        return new AlignmentRun(run(options));
    }

    TrainingOptions DefaultsOfTrainer() => _rewardModel is not null ? RewardTrainer.DefaultOptions
        : _loss is null ? SftTrainer.DefaultOptions : PreferenceTrainer.DefaultOptions;

    PolicyModel Policy => _policy ?? throw new InvalidOperationException("A reward model trains on pairs only: call Data(pairs).");

    PreferenceTrainer Preference(TrainingOptions options) => new(Policy,
        _loss ?? throw new InvalidOperationException("Call Loss(...) before Build()."), options, _reference, _precomputed, _sftMix, _logger, _callbacks);
}

/// <summary>A built run.</summary>
public sealed class AlignmentRun
{
    readonly Func<bool, CancellationToken, TrainingResult> _train;

    internal AlignmentRun(Func<bool, CancellationToken, TrainingResult> train) => _train = train;

    /// <summary>Trains (resuming from the newest checkpoint when <paramref name="resume"/>).</summary>
    public TrainingResult Train(CancellationToken cancellationToken = default, bool resume = false) => _train(resume, cancellationToken);
}
