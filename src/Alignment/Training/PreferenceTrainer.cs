using Alignment.Data;
using Alignment.Distributed;
using Alignment.Kernels;
using Alignment.Losses;
using Alignment.Models;
using Microsoft.Extensions.Logging;
using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Training;

/// <summary>
/// Preference training with any <see cref="IPreferenceLoss"/>: paired data (DPO family, CPO/SimPO, ORPO) or unpaired
/// data (KTO). It computes only what the loss asks for: no reference forward for reference-free losses, WPO weights
/// and KL pairs only when needed.
/// </summary>
public sealed class PreferenceTrainer
{
    readonly PolicyModel _policy;
    readonly IPreferenceLoss _loss;
    readonly TrainingOptions _options;
    readonly ICausalLM? _reference;
    readonly ReferenceLogProbs? _precomputed;
    readonly SftMix? _sftMix;
    readonly ILogger? _logger;
    readonly IReadOnlyList<ITrainingCallback> _callbacks;
    int _sftCursor, _micro;

    /// <summary>TRL's <c>DPOConfig</c> defaults: the options a preference run starts from (<c>learning_rate</c> 1e-6).</summary>
    public static TrainingOptions DefaultOptions { get; } = new() { LearningRate = 1e-6 };

    /// <summary>Creates the trainer.</summary>
    /// <param name="policy">The model to train (LoRA adapters or all weights).</param>
    /// <param name="loss">The objective.</param>
    /// <param name="options">Optimisation settings.</param>
    /// <param name="reference">The reference model; required when the loss needs one and nothing is precomputed.</param>
    /// <param name="precomputed">Precomputed reference log-probabilities (paired data only), instead of a live reference.</param>
    /// <param name="sftMix">SFT data mixed into training against forgetting (paired data), or null.</param>
    /// <param name="logger">Where steps, checkpoints and warnings are logged; nowhere when null.</param>
    /// <param name="callbacks">Receivers of every step's metrics, beyond metrics.jsonl and TensorBoard.</param>
    /// <exception cref="ArgumentException">The loss needs a reference and none is given, the SFT mix is invalid, or an option is out of range.</exception>
    public PreferenceTrainer(PolicyModel policy, IPreferenceLoss loss, TrainingOptions options, ICausalLM? reference = null,
        ReferenceLogProbs? precomputed = null, SftMix? sftMix = null, ILogger? logger = null, IEnumerable<ITrainingCallback>? callbacks = null)
    {
        sftMix?.Validate();
        _sftMix = sftMix;
        _policy = policy ?? throw new ArgumentNullException(nameof(policy));
        _loss = loss ?? throw new ArgumentNullException(nameof(loss));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        options.Validate();
        if (loss.Requirements.Reference && reference is null && precomputed is null)
            throw new ArgumentException($"The '{loss.Name}' loss needs a reference model (or precomputed reference log-probabilities).", nameof(reference));
        _reference = reference;
        _precomputed = precomputed;
        _logger = logger;
        _callbacks = callbacks?.ToList() ?? [];
    }

    /// <summary>TR-DPO's periodic update of the reference towards the policy (TRL's <c>sync_ref_model</c>), or null for a fixed reference.</summary>
    public ReferenceSync? SyncReference { get; init; }

    /// <summary>Trains on paired data.</summary>
    /// <param name="train">Training pairs.</param>
    /// <param name="eval">Evaluation pairs (evaluated every <see cref="TrainingOptions.EvalSteps"/> and at the end), or null.</param>
    /// <param name="resume">Continue from the newest checkpoint in <see cref="TrainingOptions.OutputDir"/> if there is one.</param>
    /// <param name="cancellationToken">Stops after the current step, writing a checkpoint.</param>
    /// <exception cref="InvalidOperationException">The loss is for unpaired data.</exception>
    public TrainingResult Train(IReadOnlyList<TokenizedPair> train, IReadOnlyList<TokenizedPair>? eval = null, bool resume = false,
        CancellationToken cancellationToken = default)
    {
        if (_loss.Requirements.Data != PreferenceDataKind.Paired)
            throw new InvalidOperationException($"The '{_loss.Name}' loss trains on unpaired data; pass TokenizedCompletion examples.");
        _sftCursor = _micro = 0;
        DecoderConfig model = _policy.Model.Config;
        TokenRange.Check(train.Concat(eval ?? []), model);
        if (_sftMix is not null)
            TokenRange.Check(_sftMix.Data, model);
        return Run(train, eval, MixedStep, p => p.Source, Evaluate, DataFingerprint.Of(train), resume, cancellationToken);
    }

    /// <summary>Trains on unpaired data (KTO, apo_zero_unpaired); the arguments are those of the paired overload.</summary>
    /// <exception cref="InvalidOperationException">The loss is for paired data.</exception>
    public TrainingResult Train(IReadOnlyList<TokenizedCompletion> train, IReadOnlyList<TokenizedCompletion>? eval = null, bool resume = false,
        CancellationToken cancellationToken = default)
    {
        if (_loss.Requirements.Data != PreferenceDataKind.Unpaired)
            throw new InvalidOperationException($"The '{_loss.Name}' loss trains on paired data; pass TokenizedPair examples.");
        TokenRange.Check(train.Concat(eval ?? []), _policy.Model.Config);
        return Run(train, eval, UnpairedStep, e => e.Source, Evaluate, DataFingerprint.Of(train), resume, cancellationToken);
    }

    /// <summary>The loss's metrics averaged over <paramref name="pairs"/> (no gradient), plus <c>loss</c>.</summary>
    public IReadOnlyDictionary<string, double> Evaluate(IReadOnlyList<TokenizedPair> pairs) =>
        EvaluationMode.Run(_policy.Model, () => StepAverages.Over(pairs, _options.BatchSize, batch => Step(new Shard<TokenizedPair>(batch))));

    /// <summary>The loss's metrics averaged over unpaired <paramref name="examples"/> (no gradient), plus <c>loss</c>.</summary>
    public IReadOnlyDictionary<string, double> Evaluate(IReadOnlyList<TokenizedCompletion> examples) =>
        EvaluationMode.Run(_policy.Model, () => StepAverages.Over(examples, _options.BatchSize, batch => UnpairedStep(new Shard<TokenizedCompletion>(batch))));

    TrainingResult Run<T>(IReadOnlyList<T> train, IReadOnlyList<T>? eval, Func<Shard<T>, StepOutput> step, Func<T, SourceLocation?> sourceOf,
        Func<IReadOnlyList<T>, IReadOnlyDictionary<string, double>> evaluate, string data, bool resume, CancellationToken cancellationToken)
    {
        ReferenceModel? synced = SyncedReference();
        _policy.Model.train();
        var task = TrainingTask.Batches(TrainingTask.TrainableOf(_policy.Model), _options, step, sourceOf) with
        {
            Evaluate = eval is null ? null : () => evaluate(eval),
            Config = new Dictionary<string, string>
            {
                ["loss"] = _loss.Name, ["sft_mix"] = _sftMix is null ? "none" : FormattableString.Invariant($"{_sftMix.Mode} {_sftMix.Weight}"), ["train_data"] = data,
                ["sync_ref_model"] = SyncReference is { } s ? FormattableString.Invariant($"alpha {s.MixupAlpha} every {s.SyncSteps}") : "none",
            },
        };
        if (synced is not null)
        {
            var inner = task.Step;
            ReferenceSync sync = SyncReference!;
            task = task with
            {
                Step = (examples, context) =>
                {
                    var metrics = inner(examples, context);
                    if ((context.Step + 1) % sync.SyncSteps == 0)
                        MixIntoReference(synced, sync.MixupAlpha);
                    return metrics;
                },
                ExtraTensors = synced.Model.named_parameters().Select(p => ("reference." + p.name, (Tensor)p.parameter)).ToList(),
            };
        }
        using var settings = RunSettings.Apply(_options, _policy.Model, _reference);
        return new TrainingLoop<T>(train, task, _options, _logger, _callbacks).Run(resume, cancellationToken);
    }

    /// <summary>The reference that <see cref="SyncReference"/> updates, checked to be one it can update; null without syncing.</summary>
    /// <exception cref="ArgumentException">The options are out of range, or the setup has no separate reference to update.</exception>
    ReferenceModel? SyncedReference()
    {
        if (SyncReference is not { } sync)
            return null;
        sync.Validate();
        if (_precomputed is not null)
            throw new ArgumentException("sync_ref_model cannot be used with precomputed reference log-probabilities: they assume a fixed reference, which syncing changes.");
        if (_policy.UsesLora || _reference is ReferenceModel { SharesPolicyWeights: true })
            throw new ArgumentException("sync_ref_model needs a reference model of its own: with LoRA the reference is the policy's base weights with the adapters off, " +
                "so there is none to update (TRL refuses this too). Train all weights, or drop sync_ref_model.");
        return _reference as ReferenceModel ?? throw new ArgumentException(
            $"sync_ref_model updates a ReferenceModel's weights; the '{_loss.Name}' loss here has {(_reference is null ? "no reference" : "a reference of another kind")}.");
    }

    /// <summary>TR-DPO: reference ← α·policy + (1 − α)·reference, parameter by parameter, in place.</summary>
    void MixIntoReference(ReferenceModel reference, double alpha)
    {
        using var noGrad = no_grad();
        using Scalar keep = (1 - alpha).ToScalar(), take = alpha.ToScalar();
        var policy = _policy.Model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, target) in reference.Model.named_parameters())
            target.mul_(keep).add_(policy[name], take);
    }

    /// <summary>A preference step, with SFT data mixed in as configured.</summary>
    StepOutput MixedStep(Shard<TokenizedPair> shard)
    {
        if (_sftMix is null)
            return Step(shard);
        int step = _micro++ / _options.GradientAccumulationSteps;
        if (_sftMix.Mode == SftMixMode.Sequential)
        {
            int period = (int)Math.Ceiling(1 / _sftMix.Weight);
            return step % period == period - 1 ? SftStep(NextSft(shard)) : Step(shard);
        }
        StepOutput preference = Step(shard);
        StepOutput sft = SftStep(NextSft(shard));
        var metrics = new Dictionary<string, Tensor>(preference.Metrics) { ["sft_loss"] = sft.Loss.detach() };
        return new StepOutput(preference.Loss.add(sft.Loss.mul(_sftMix.Weight)), metrics, preference.Tokens + sft.Tokens) { Items = preference.Items };
    }

    /// <summary>The SFT examples mixed into <paramref name="shard"/>'s micro-batch: the stream advances by the global batch, of which this process takes its share.</summary>
    List<TokenizedCompletion> NextSft(Shard<TokenizedPair> shard)
    {
        var batch = new List<TokenizedCompletion>(shard.Count);
        for (int i = shard.Offset; i < shard.Offset + shard.Count; i++)
            batch.Add(_sftMix!.Data[(_sftCursor + i) % _sftMix.Data.Count]);
        _sftCursor += shard.Global.Count;
        return batch;
    }

    StepOutput SftStep(IReadOnlyList<TokenizedCompletion> examples)
    {
        var (nll, _, tokens) = BatchForward.CompletionNll(_policy.Model, examples, _options.PaddingValue);
        return new StepOutput(nll, new Dictionary<string, Tensor> { ["sft_loss"] = nll.detach() }, tokens) { Items = examples.Count };
    }

    StepOutput Step(Shard<TokenizedPair> shard)
    {
        IReadOnlyList<TokenizedPair> pairs = shard.Local;
        LossRequirements needs = _loss.Requirements;
        using PreferenceBatch batch = PreferenceCollator.Collate(pairs, _options.PaddingValue, _policy.Model.Device);
        int b = pairs.Count;
        ICausalLM model = _policy.Model;
        Tensor hidden = model.Forward(batch.InputIds, batch.AttentionMask);
        Tensor mask = batch.Targets.ne(TokenLogProbs.IgnoreIndex);
        Tensor counts = TokenLogProbs.TokenCounts(mask);
        Tensor? wpo = needs.WpoWeights ? ModelLogProbs.WpoLogWeights(model, hidden, batch.Targets) : null;
        ScalarType accumulation = TokenLogProbs.AccumulationType(hidden.dtype);
        Tensor? reference = needs.Reference ? ReferenceSums(pairs, batch, accumulation) : null;
        Tensor? margins = pairs.Any(p => p.Margin is not null)
            ? tensor(pairs.Select(p => p.Margin ?? 0).ToArray(), device: model.Device).to_type(accumulation) : null;
        PreferenceForward ForwardOf(Tensor perToken) => new()
        {
            Chosen = CompletionLogProbs.FromTokens(perToken.narrow(0, 0, b), mask.narrow(0, 0, b), wpo?.narrow(0, 0, b)),
            Rejected = CompletionLogProbs.FromTokens(perToken.narrow(0, b, b), mask.narrow(0, b, b), wpo?.narrow(0, b, b)),
            ReferenceChosen = reference is null ? null : new CompletionLogProbs(reference.narrow(0, 0, b), counts.narrow(0, 0, b)),
            ReferenceRejected = reference is null ? null : new CompletionLogProbs(reference.narrow(0, b, b), counts.narrow(0, b, b)),
            Margins = margins,
            Group = shard.Group,
        };

        long tokens = batch.AttentionMask.sum().item<long>();
        if (ModelLogProbs.Fusable(model) && SeparableLoss.Applies(needs, hidden, model.LmHeadWeight))
        {
            var (values, gradient) = SeparableLoss.Run(_loss, hidden, model.LmHeadWeight, batch.Targets, ForwardOf);
            PreferenceLossOutput value;
            using (no_grad())
                value = _loss.Compute(ForwardOf(values));
            return new StepOutput(value.Loss.add(gradient), value.Metrics, tokens) { Items = b };
        }
        PreferenceLossOutput output = _loss.Compute(ForwardOf(ModelLogProbs.Of(model, hidden, batch.Targets)));
        return new StepOutput(output.Loss, output.Metrics, tokens) { Items = b };
    }

    /// <summary>The reference's summed log-probabilities [2B] of the batch, precomputed or from the live reference.</summary>
    Tensor ReferenceSums(IReadOnlyList<TokenizedPair> pairs, PreferenceBatch batch, ScalarType dtype) =>
        _precomputed is not null
            ? tensor(pairs.Select(p => _precomputed[p].Chosen).Concat(pairs.Select(p => _precomputed[p].Rejected)).ToArray(), device: _policy.Model.Device).to_type(dtype)
            : BatchForward.Sums(_reference!, batch.InputIds, batch.AttentionMask, batch.Targets);

    StepOutput UnpairedStep(Shard<TokenizedCompletion> shard)
    {
        LossRequirements needs = _loss.Requirements;
        IReadOnlyList<TokenizedCompletion> examples = shard.Local;
        using CompletionBatch batch = CompletionCollator.Collate(examples, _options.PaddingValue, needs.KlCompletions, _policy.Model.Device,
            klPartners: KlPartners(shard));
        var (perToken, mask, _) = BatchForward.LogProbs(_policy.Model, batch.InputIds, batch.AttentionMask, batch.Targets);
        Tensor counts = TokenLogProbs.TokenCounts(mask);
        CompletionLogProbs? kl = null, referenceKl = null;
        if (batch.KlInputIds is not null)
        {
            kl = new CompletionLogProbs(BatchForward.Sums(_policy.Model, batch.KlInputIds, batch.KlAttentionMask!, batch.KlTargets!), counts);
            referenceKl = new CompletionLogProbs(BatchForward.Sums(_reference!, batch.KlInputIds, batch.KlAttentionMask!, batch.KlTargets!), counts);
        }
        var forward = new PreferenceForward
        {
            Completions = CompletionLogProbs.FromTokens(perToken, mask),
            ReferenceCompletions = new CompletionLogProbs(BatchForward.Sums(_reference!, batch.InputIds, batch.AttentionMask, batch.Targets), counts),
            Desirable = batch.Desirable,
            KlCompletions = kl,
            ReferenceKlCompletions = referenceKl,
            Group = shard.Group,
        };
        PreferenceLossOutput output = _loss.Compute(forward);
        return new StepOutput(output.Loss, output.Metrics, batch.AttentionMask.sum().item<long>()) { Items = examples.Count };
    }

    /// <summary>
    /// KTO's mismatched completion for each of this process's examples: the previous example's in the global micro-batch
    /// (TRL rotates completions by one), so the pairs do not depend on how the batch is split; null for a batch of one.
    /// </summary>
    static IReadOnlyList<TokenizedCompletion>? KlPartners(Shard<TokenizedCompletion> shard) =>
        shard.Global.Count < 2 ? null
            : Enumerable.Range(shard.Offset, shard.Count).Select(i => shard.Global[(i - 1 + shard.Global.Count) % shard.Global.Count]).ToList();
}
