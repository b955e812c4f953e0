using Alignment.Distributed;
using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace Alignment.Losses;

/// <summary>
/// Losses for unpaired data (one completion per example, labelled desirable or not), as TRL's <c>KTOTrainer</c>.
/// </summary>
/// <remarks>
/// <para><b>kto</b> (Ethayarajh et al. 2024): with <c>r = log π(y|x) − log π_ref(y|x)</c> and the reference point
/// <c>z0 = max(0, mean(log π(y'|x) − log π_ref(y'|x)))</c> (detached) over the mismatched pairs of the whole batch
/// (every process's share: <see cref="PreferenceForward.Group"/>) (each prompt with another
/// example's completion, <see cref="PreferenceForward.KlCompletions"/>), a desirable completion costs
/// <c>λD·(1 − σ(β(r − z0)))</c> and an undesirable one <c>λU·(1 − σ(β(z0 − r)))</c>; the loss is the mean over the batch.</para>
/// <para><b>apo_zero_unpaired</b>: desirable <c>λD·(1 − σ(βr))</c>, undesirable <c>λU·σ(βr)</c>; no KL pairs needed.</para>
/// <para><b>A batch without mismatched pairs</b> (a batch of one, or <see cref="PreferenceForward.KlCompletions"/> empty):
/// no KL estimate is possible, so z0 is taken as 0 — the loss stays finite and becomes a sigmoid of the raw
/// log-ratio — and a warning is logged; the <c>kl</c> metric reports 0.</para>
/// <para>Metrics: <c>rewards/chosen</c> and <c>logps/chosen</c> over the desirable completions, <c>rewards/rejected</c>
/// and <c>logps/rejected</c> over the undesirable ones, of the whole batch across processes (each omitted when it has none), <c>rewards/margins</c>
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
        Tensor rewards = ratio.mul(beta).detach().to_type(ScalarType.Float64);
        Tensor logpsWide = logps.detach().to_type(ScalarType.Float64);
        Tensor wanted = desirable.to_type(ScalarType.Float64), unwanted = wanted.neg().add(1);
        // Sums and counts over every process's share of the batch, so that the means are the global batch's (TRL gathers them).
        double[] totals = forward.Group.AllReduceSum([.. new[] { rewards.mul(wanted).sum(), wanted.sum(), rewards.mul(unwanted).sum(), unwanted.sum(),
            logpsWide.mul(wanted).sum(), logpsWide.mul(unwanted).sum() }.Select(t => t.item<double>())]);
        if (totals[1] > 0)
        {
            metrics["rewards/chosen"] = tensor(totals[0] / totals[1]);
            metrics["logps/chosen"] = tensor(totals[4] / totals[1]);
        }
        if (totals[3] > 0)
        {
            metrics["rewards/rejected"] = tensor(totals[2] / totals[3]);
            metrics["logps/rejected"] = tensor(totals[5] / totals[3]);
        }
        if (totals[1] > 0 && totals[3] > 0)
            metrics["rewards/margins"] = tensor(totals[0] / totals[1] - totals[2] / totals[3]);
        return LossMath.Keep(loss, metrics);
    }

    /// <summary>
    /// z0 = max(0, mean KL-pair log-ratio) over every process's pairs, detached; 0 (with a warning) when no mismatched
    /// pair exists.
    /// </summary>
    Tensor KlEstimate(PreferenceForward forward, Tensor logps)
    {
        ScalarType dtype = logps.dtype;
        CompletionLogProbs? policyKl = forward.KlCompletions;
        double sum = 0, count = 0;
        if (policyKl is { Count: > 0 })
        {
            CompletionLogProbs referenceKl = PreferenceForward.Require(forward.ReferenceKlCompletions, nameof(forward.ReferenceKlCompletions), Name);
            using Tensor logRatios = policyKl.Sums.detach().to_type(ScalarType.Float64).sub(referenceKl.Sums.detach().to_type(ScalarType.Float64));
            sum = logRatios.sum().item<double>();
            count = policyKl.Count;
        }
        double[] total = forward.Group.AllReduceSum(sum, count);
        if (total[1] == 0)
        {
            LogNoKlPairs(_logger, logps.shape[0]);
            return tensor(0.0, dtype, logps.device);
        }
        return tensor(Math.Max(0, total[0] / total[1]), dtype, logps.device);
    }

    [LoggerMessage(EventId = 3001, Level = LogLevel.Warning,
        Message = "KTO class balance: desirable_weight*nD/(undesirable_weight*nU) = {Ratio} (nD = {Desirable}, nU = {Undesirable}) is outside [1, 4/3]")]
    static partial void LogImbalance(ILogger logger, double ratio, long desirable, long undesirable);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Warning,
        Message = "KTO batch of {BatchSize} has no mismatched KL pairs; the reference point z0 is taken as 0 for this batch")]
    static partial void LogNoKlPairs(ILogger logger, long batchSize);
}
