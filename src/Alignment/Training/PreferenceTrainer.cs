using System.Security.Cryptography;
using Alignment.Data;
using Alignment.Kernels;
using Alignment.Losses;
using Alignment.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Training;

/// <summary>Forward passes shared by the trainers: per-token log-probabilities of the completions of a batch.</summary>
internal static class BatchForward
{
    /// <summary>Per-token log-probabilities [R, T] and the completion mask [R, T] of padded rows.</summary>
    public static (Tensor PerToken, Tensor Mask, Tensor Hidden) LogProbs(ICausalLM model, Tensor inputIds, Tensor attentionMask, Tensor targets)
    {
        Tensor hidden = model.Forward(inputIds, attentionMask);
        Tensor perToken = TokenLogProbs.FromHidden(hidden, model.LmHeadWeight, targets);
        return (perToken, targets.ne(TokenLogProbs.IgnoreIndex), hidden);
    }

    /// <summary>Per-sequence sums of a model's log-probabilities, under no-grad.</summary>
    public static Tensor Sums(ICausalLM model, Tensor inputIds, Tensor attentionMask, Tensor targets)
    {
        using var noGrad = no_grad();
        var (perToken, mask, _) = LogProbs(model, inputIds, attentionMask, targets);
        return TokenLogProbs.SequenceSum(perToken, mask);
    }
}

/// <summary>
/// Reference-model log-probabilities computed once over a dataset and kept (and cached on disk), so that a
/// full-weight policy trains without a reference model in memory.
/// </summary>
public sealed class ReferenceLogProbs
{
    readonly Dictionary<string, (double Chosen, double Rejected)> _byPair;

    ReferenceLogProbs(Dictionary<string, (double, double)> byPair) => _byPair = byPair;

    /// <summary>Number of pairs held.</summary>
    public int Count => _byPair.Count;

    /// <summary>Runs the reference over every pair (no-grad, in batches).</summary>
    public static ReferenceLogProbs Compute(ICausalLM reference, IReadOnlyList<TokenizedPair> pairs, int batchSize = 8, long padTokenId = 0)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(pairs);
        var values = new Dictionary<string, (double, double)>();
        for (int start = 0; start < pairs.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var batch = pairs.Skip(start).Take(batchSize).ToList();
            using PreferenceBatch collated = PreferenceCollator.Collate(batch, padTokenId, reference.Device);
            double[] sums = BatchForward.Sums(reference, collated.InputIds, collated.AttentionMask, collated.Targets).to_type(ScalarType.Float64).data<double>().ToArray();
            for (int i = 0; i < batch.Count; i++)
                values[KeyOf(batch[i])] = (sums[i], sums[batch.Count + i]);
        }
        return new ReferenceLogProbs(values);
    }

    /// <summary>The reference's summed log-probabilities of a pair's chosen and rejected completions.</summary>
    /// <exception cref="KeyNotFoundException">The pair was not part of the precomputed dataset.</exception>
    public (double Chosen, double Rejected) this[TokenizedPair pair] => _byPair.TryGetValue(KeyOf(pair), out var value) ? value
        : throw new KeyNotFoundException($"No precomputed reference log-probabilities for the pair from {pair.Source}: precompute over the same data.");

    /// <summary>Writes the cache (one line per pair: key, chosen, rejected).</summary>
    public void Save(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.WriteAllLines(path + ".tmp", _byPair.Select(kv => FormattableString.Invariant($"{kv.Key}\t{kv.Value.Chosen:R}\t{kv.Value.Rejected:R}")));
        File.Move(path + ".tmp", path, overwrite: true);
    }

    /// <summary>Reads a cache written by <see cref="Save"/>.</summary>
    /// <exception cref="InvalidDataException">A malformed line, naming the file and line.</exception>
    public static ReferenceLogProbs Load(string path)
    {
        var values = new Dictionary<string, (double, double)>();
        int number = 0;
        foreach (string line in File.ReadLines(path))
        {
            number++;
            string[] parts = line.Split('\t');
            if (parts.Length != 3 || !double.TryParse(parts[1], System.Globalization.CultureInfo.InvariantCulture, out double c)
                || !double.TryParse(parts[2], System.Globalization.CultureInfo.InvariantCulture, out double r))
                throw new InvalidDataException($"{path}:{number}: not a reference log-probability line.");
            values[parts[0]] = (c, r);
        }
        return new ReferenceLogProbs(values);
    }

    static string KeyOf(TokenizedPair pair)
    {
        var bytes = new List<byte>();
        foreach (int[] part in new[] { pair.Prompt, pair.Chosen, pair.Rejected })
        {
            bytes.AddRange(BitConverter.GetBytes(part.Length));
            foreach (int id in part)
                bytes.AddRange(BitConverter.GetBytes(id));
        }
        return Convert.ToHexString(SHA256.HashData(bytes.ToArray()));
    }
}

/// <summary>How SFT data is mixed into preference training.</summary>
public enum SftMixMode
{
    /// <summary>Every step adds <c>weight · NLL</c> of one SFT batch to the preference loss.</summary>
    Interleaved,

    /// <summary>Every ⌈1/weight⌉-th optimizer step is a plain SFT step instead of a preference step (weight is the share of SFT steps).</summary>
    Sequential,
}

/// <summary>SFT data mixed into preference training, a guard against forgetting what SFT taught.</summary>
/// <param name="Data">The SFT examples (cycled through in order).</param>
/// <param name="Weight">Interleaved: the SFT loss weight; Sequential: the share of SFT steps, in (0, 1).</param>
/// <param name="Mode">How the two are mixed.</param>
public sealed record SftMix(IReadOnlyList<TokenizedCompletion> Data, double Weight = 0.5, SftMixMode Mode = SftMixMode.Interleaved);

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
    readonly long _padTokenId;
    readonly SftMix? _sftMix;
    int _sftCursor, _micro;

    /// <summary>Creates the trainer.</summary>
    /// <param name="policy">The model to train (LoRA adapters or all weights).</param>
    /// <param name="loss">The objective.</param>
    /// <param name="options">Optimisation settings.</param>
    /// <param name="reference">The reference model; required when the loss needs one and nothing is precomputed.</param>
    /// <param name="precomputed">Precomputed reference log-probabilities (paired data only), instead of a live reference.</param>
    /// <param name="padTokenId">Padding id for batches.</param>
    /// <param name="sftMix">SFT data mixed into training against forgetting (paired data), or null.</param>
    /// <exception cref="ArgumentException">The loss needs a reference and none is given, or the SFT mix is invalid.</exception>
    public PreferenceTrainer(PolicyModel policy, IPreferenceLoss loss, TrainingOptions options, ICausalLM? reference = null,
        ReferenceLogProbs? precomputed = null, long padTokenId = 0, SftMix? sftMix = null)
    {
        if (sftMix is not null && (sftMix.Data.Count == 0 || !(sftMix.Weight > 0) || sftMix.Mode == SftMixMode.Sequential && !(sftMix.Weight < 1)))
            throw new ArgumentException("SFT mixing needs data and a weight > 0 (and < 1 for the sequential mode).", nameof(sftMix));
        _sftMix = sftMix;
        _policy = policy ?? throw new ArgumentNullException(nameof(policy));
        _loss = loss ?? throw new ArgumentNullException(nameof(loss));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        options.Validate();
        if (loss.Requirements.Reference && reference is null && precomputed is null)
            throw new ArgumentException($"The '{loss.Name}' loss needs a reference model (or precomputed reference log-probabilities).", nameof(reference));
        _reference = reference;
        _precomputed = precomputed;
        _padTokenId = padTokenId;
    }

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
        _policy.Model.train();
        _sftCursor = _micro = 0;
        var loop = new TrainingLoop<TokenizedPair>(train, Trainable(), MixedStep, p => p.Source, _options,
            eval is null ? null : () => Evaluate(eval));
        return loop.Run(resume, cancellationToken);
    }

    /// <summary>Trains on unpaired data (KTO, apo_zero_unpaired).</summary>
    /// <exception cref="InvalidOperationException">The loss is for paired data.</exception>
    public TrainingResult Train(IReadOnlyList<TokenizedCompletion> train, bool resume = false, CancellationToken cancellationToken = default)
    {
        if (_loss.Requirements.Data != PreferenceDataKind.Unpaired)
            throw new InvalidOperationException($"The '{_loss.Name}' loss trains on paired data; pass TokenizedPair examples.");
        _policy.Model.train();
        var loop = new TrainingLoop<TokenizedCompletion>(train, Trainable(), batch => UnpairedStep(batch), e => e.Source, _options, null);
        return loop.Run(resume, cancellationToken);
    }

    /// <summary>The loss's metrics averaged over <paramref name="pairs"/> (no gradient), plus <c>loss</c>.</summary>
    public IReadOnlyDictionary<string, double> Evaluate(IReadOnlyList<TokenizedPair> pairs)
    {
        bool training = _policy.Model.training;
        _policy.Model.eval();
        try
        {
            return StepAverages.Over(pairs, _options.BatchSize, Step);
        }
        finally
        {
            _policy.Model.train(training);
        }
    }

    IReadOnlyList<(string, TorchSharp.Modules.Parameter)> Trainable() =>
        _policy.Model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter)).ToList();

    /// <summary>A preference step, with SFT data mixed in as configured.</summary>
    StepOutput MixedStep(IReadOnlyList<TokenizedPair> pairs)
    {
        if (_sftMix is null)
            return Step(pairs);
        int step = _micro++ / _options.GradientAccumulationSteps;
        if (_sftMix.Mode == SftMixMode.Sequential)
        {
            int period = (int)Math.Ceiling(1 / _sftMix.Weight);
            return step % period == period - 1 ? SftStep(NextSft(pairs.Count)) : Step(pairs);
        }
        StepOutput preference = Step(pairs);
        StepOutput sft = SftStep(NextSft(pairs.Count));
        var metrics = new Dictionary<string, Tensor>(preference.Metrics) { ["sft_loss"] = sft.Loss.detach() };
        return new StepOutput(preference.Loss.add(sft.Loss.mul(_sftMix.Weight)), metrics, preference.Tokens + sft.Tokens);
    }

    List<TokenizedCompletion> NextSft(int count)
    {
        var batch = new List<TokenizedCompletion>(count);
        for (int i = 0; i < count; i++)
            batch.Add(_sftMix!.Data[_sftCursor++ % _sftMix.Data.Count]);
        return batch;
    }

    StepOutput SftStep(IReadOnlyList<TokenizedCompletion> examples)
    {
        using CompletionBatch batch = CompletionCollator.Collate(examples, _padTokenId, device: _policy.Model.Device);
        var (perToken, mask, _) = BatchForward.LogProbs(_policy.Model, batch.InputIds, batch.AttentionMask, batch.Targets);
        Tensor nll = perToken.where(mask, 0.0).sum().neg().div(mask.sum().to_type(perToken.dtype).clamp_min(1));
        return new StepOutput(nll, new Dictionary<string, Tensor> { ["sft_loss"] = nll.detach() }, batch.AttentionMask.sum().item<long>());
    }

    StepOutput Step(IReadOnlyList<TokenizedPair> pairs)
    {
        LossRequirements needs = _loss.Requirements;
        using PreferenceBatch batch = PreferenceCollator.Collate(pairs, _padTokenId, _policy.Model.Device);
        int b = pairs.Count;
        var (perToken, mask, hidden) = BatchForward.LogProbs(_policy.Model, batch.InputIds, batch.AttentionMask, batch.Targets);
        Tensor? wpo = needs.WpoWeights ? TokenLogProbs.WpoLogWeightsFromHidden(hidden.detach(), _policy.Model.LmHeadWeight.detach(), batch.Targets) : null;
        var forward = new PreferenceForward
        {
            Chosen = CompletionLogProbs.FromTokens(perToken.narrow(0, 0, b), mask.narrow(0, 0, b), wpo?.narrow(0, 0, b)),
            Rejected = CompletionLogProbs.FromTokens(perToken.narrow(0, b, b), mask.narrow(0, b, b), wpo?.narrow(0, b, b)),
        };
        if (needs.Reference)
        {
            Tensor counts = TokenLogProbs.TokenCounts(mask);
            Tensor sums = _precomputed is not null
                ? tensor(pairs.Select(p => _precomputed[p].Chosen).Concat(pairs.Select(p => _precomputed[p].Rejected)).ToArray(), device: _policy.Model.Device)
                    .to_type(forward.Chosen.Sums.dtype)
                : BatchForward.Sums(_reference!, batch.InputIds, batch.AttentionMask, batch.Targets);
            forward = new PreferenceForward
            {
                Chosen = forward.Chosen,
                Rejected = forward.Rejected,
                ReferenceChosen = new CompletionLogProbs(sums.narrow(0, 0, b), counts.narrow(0, 0, b)),
                ReferenceRejected = new CompletionLogProbs(sums.narrow(0, b, b), counts.narrow(0, b, b)),
            };
        }
        PreferenceLossOutput output = _loss.Compute(forward);
        return new StepOutput(output.Loss, output.Metrics, batch.AttentionMask.sum().item<long>());
    }

    StepOutput UnpairedStep(IReadOnlyList<TokenizedCompletion> examples)
    {
        LossRequirements needs = _loss.Requirements;
        using CompletionBatch batch = CompletionCollator.Collate(examples, _padTokenId, needs.KlCompletions, _policy.Model.Device);
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
        };
        PreferenceLossOutput output = _loss.Compute(forward);
        return new StepOutput(output.Loss, output.Metrics, batch.AttentionMask.sum().item<long>());
    }
}
