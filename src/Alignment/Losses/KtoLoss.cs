using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace Alignment.Losses;

/// <summary>
/// Losses for unpaired data (one completion per example, labelled desirable or not), as TRL's <c>KTOTrainer</c>.
/// </summary>
/// <remarks>
/// <para><b>kto</b> (Ethayarajh et al. 2024): with <c>r = log π(y|x) − log π_ref(y|x)</c> and the reference point
/// <c>z0 = max(0, mean(log π(y'|x) − log π_ref(y'|x)))</c> (detached) over mismatched pairs (each prompt with another
/// example's completion, <see cref="PreferenceForward.KlCompletions"/>), a desirable completion costs
/// <c>λD·(1 − σ(β(r − z0)))</c> and an undesirable one <c>λU·(1 − σ(β(z0 − r)))</c>; the loss is the mean over the batch.</para>
/// <para><b>apo_zero_unpaired</b>: desirable <c>λD·(1 − σ(βr))</c>, undesirable <c>λU·σ(βr)</c>; no KL pairs needed.</para>
/// <para><b>A batch without mismatched pairs</b> (a batch of one, or <see cref="PreferenceForward.KlCompletions"/> empty):
/// no KL estimate is possible, so z0 is taken as 0 — the loss stays finite and becomes a sigmoid of the raw
/// log-ratio — and a warning is logged; the <c>kl</c> metric reports 0.</para>
/// <para>Metrics: <c>rewards/chosen</c> and <c>logps/chosen</c> over the desirable completions, <c>rewards/rejected</c>
/// and <c>logps/rejected</c> over the undesirable ones (each omitted when the batch has none), <c>rewards/margins</c>
/// when it has both, and <c>kl</c>.</para>
/// </remarks>
public sealed partial class KtoLoss : IPreferenceLoss
{
    readonly PreferenceLossOptions _options;
    readonly ILogger _logger;

    /// <summary>Creates <c>kto</c> or <c>apo_zero_unpaired</c>.</summary>
    /// <param name="type"><c>kto</c> or <c>apo_zero_unpaired</c>.</param>
    /// <param name="options">Hyper-parameters; defaults when null.</param>
    /// <param name="logger">Where warnings go (the class-balance advice, batches without KL pairs); nowhere when null.</param>
    /// <exception cref="ArgumentException">Unknown type, or an option out of range.</exception>
    public KtoLoss(string type = "kto", PreferenceLossOptions? options = null, ILogger? logger = null)
    {
        _logger = logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        ArgumentNullException.ThrowIfNull(type);
        Name = type.Trim().ToLowerInvariant();
        if (Name is not ("kto" or "apo_zero_unpaired"))
            throw new ArgumentException($"Unknown unpaired loss type '{type}'. Known: kto, apo_zero_unpaired.", nameof(type));
        _options = options ?? new PreferenceLossOptions();
        _options.Validate();
        Requirements = new LossRequirements(PreferenceDataKind.Unpaired, Reference: true, KlCompletions: Name == "kto");
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public LossRequirements Requirements { get; }

    /// <summary>
    /// The KTO paper advises <c>λD·nD / (λU·nU)</c> in [1, 4/3]. Returns a warning (also logged) when the dataset's
    /// counts put it outside, or null when they are within.
    /// </summary>
    /// <param name="desirable">Number of desirable examples nD.</param>
    /// <param name="undesirable">Number of undesirable examples nU.</param>
    public string? CheckDesirableBalance(long desirable, long undesirable)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(desirable);
        ArgumentOutOfRangeException.ThrowIfNegative(undesirable);
        double ratio = undesirable == 0 ? double.PositiveInfinity
            : _options.DesirableWeight * desirable / (_options.UndesirableWeight * undesirable);
        if (ratio >= 1 && ratio <= 4.0 / 3.0)
            return null;
        LogImbalance(_logger, ratio, desirable, undesirable);
        return $"desirable_weight·nD / (undesirable_weight·nU) = {ratio:G4} (nD = {desirable}, nU = {undesirable}) is outside " +
               "[1, 4/3], the range the KTO paper advises; adjust desirable_weight or undesirable_weight.";
    }

    /// <inheritdoc />
    public PreferenceLossOutput Compute(PreferenceForward forward)
    {
        ArgumentNullException.ThrowIfNull(forward);
        using var scope = NewDisposeScope();
        CompletionLogProbs policy = PreferenceForward.Require(forward.Completions, nameof(forward.Completions), Name);
        CompletionLogProbs reference = PreferenceForward.Require(forward.ReferenceCompletions, nameof(forward.ReferenceCompletions), Name);
        Tensor desirable = PreferenceForward.Require(forward.Desirable, nameof(forward.Desirable), Name).to_type(ScalarType.Bool);
        if (!desirable.shape.SequenceEqual(policy.Sums.shape))
            throw new ArgumentException($"Desirable has {desirable.shape.FirstOrDefault()} labels for {policy.Count} completions.", nameof(forward));

        double beta = _options.Beta;
        Tensor logps = policy.Sums;
        Tensor ratio = logps.sub(reference.Sums.detach().to_type(logps.dtype)); // r [B]
        Tensor kl = Name == "kto" ? KlEstimate(forward, logps) : tensor(0.0, logps.dtype, logps.device);

        Tensor desirableLoss, undesirableLoss;
        if (Name == "kto")
        {
            desirableLoss = ratio.sub(kl).mul(-beta).sigmoid();   // 1 − σ(β(r − z0)) = σ(−β(r − z0))
            undesirableLoss = ratio.sub(kl).mul(beta).sigmoid();  // 1 − σ(β(z0 − r)) = σ(β(r − z0))
        }
        else
        {
            desirableLoss = ratio.mul(-beta).sigmoid();
            undesirableLoss = ratio.mul(beta).sigmoid();
        }
        Tensor losses = desirableLoss.mul(_options.DesirableWeight)
            .where(desirable, undesirableLoss.mul(_options.UndesirableWeight));
        Tensor loss = losses.mean();

        var metrics = new Dictionary<string, Tensor> { ["kl"] = kl.detach() };
        Tensor rewards = ratio.mul(beta).detach();
        Tensor undesired = desirable.logical_not();
        bool anyDesirable = desirable.any().item<bool>(), anyUndesirable = undesired.any().item<bool>();
        if (anyDesirable)
        {
            metrics["rewards/chosen"] = rewards.masked_select(desirable).mean();
            metrics["logps/chosen"] = logps.detach().masked_select(desirable).mean();
        }
        if (anyUndesirable)
        {
            metrics["rewards/rejected"] = rewards.masked_select(undesired).mean();
            metrics["logps/rejected"] = logps.detach().masked_select(undesired).mean();
        }
        if (anyDesirable && anyUndesirable)
            metrics["rewards/margins"] = metrics["rewards/chosen"].sub(metrics["rewards/rejected"]);
        return LossMath.Keep(loss, metrics);
    }

    /// <summary>z0 = max(0, mean KL-pair log-ratio), detached; 0 (with a warning) when no mismatched pair exists.</summary>
    Tensor KlEstimate(PreferenceForward forward, Tensor logps)
    {
        ScalarType dtype = logps.dtype;
        CompletionLogProbs? policyKl = forward.KlCompletions;
        if (policyKl is null || policyKl.Count == 0)
        {
            LogNoKlPairs(_logger, logps.shape[0]);
            return tensor(0.0, dtype, logps.device);
        }
        CompletionLogProbs referenceKl = PreferenceForward.Require(forward.ReferenceKlCompletions, nameof(forward.ReferenceKlCompletions), Name);
        return policyKl.Sums.detach().to_type(dtype).sub(referenceKl.Sums.detach().to_type(dtype)).mean().clamp_min(0);
    }

    [LoggerMessage(EventId = 3001, Level = LogLevel.Warning,
        Message = "KTO class balance: desirable_weight*nD/(undesirable_weight*nU) = {Ratio} (nD = {Desirable}, nU = {Undesirable}) is outside [1, 4/3]")]
    static partial void LogImbalance(ILogger logger, double ratio, long desirable, long undesirable);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Warning,
        Message = "KTO batch of {BatchSize} has no mismatched KL pairs; the reference point z0 is taken as 0 for this batch")]
    static partial void LogNoKlPairs(ILogger logger, long batchSize);
}
