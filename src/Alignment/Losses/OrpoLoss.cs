using static TorchSharp.torch;

namespace Alignment.Losses;

/// <summary>
/// ORPO (Hong et al. 2024), reference-free, as TRL's <c>ORPOTrainer</c>:
/// <c>NLL(chosen) − λ·mean(logσ(log-odds(p̄_c) − log-odds(p̄_r)))</c> with <c>log-odds(p) = log p − log(1 − p)</c> of the per-token
/// average log-probabilities, and λ = <c>beta</c>. <c>log(1 − p)</c> is computed stably from <c>log p</c>, and average
/// log-probabilities are capped just below 0 so that a completion of probability 1 still gives a finite loss.
/// Reports <c>log_odds_ratio</c>, <c>log_odds_chosen</c>, <c>nll_loss</c>, and rewards <c>λ·avg log π</c>.
/// </summary>
public sealed class OrpoLoss : IPreferenceLoss
{
    const double LogProbabilityCap = -1e-7;
    readonly PreferenceLossOptions _options;

    /// <summary>Creates the ORPO loss.</summary>
    /// <param name="options">Hyper-parameters (λ is <see cref="PreferenceLossOptions.Beta"/>); defaults when null.</param>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public OrpoLoss(PreferenceLossOptions? options = null)
    {
        _options = options ?? new PreferenceLossOptions();
        _options.Validate();
    }

    /// <inheritdoc />
    public string Name => "orpo";

    /// <inheritdoc />
    public LossRequirements Requirements { get; } =
        new(PreferenceDataKind.Paired, Reference: false, LengthNormalized: true, ChosenNll: true) { SeparableByPair = true };

    /// <inheritdoc />
    public PreferenceLossOutput Compute(PreferenceForward forward)
    {
        ArgumentNullException.ThrowIfNull(forward);
        using var scope = NewDisposeScope();
        CompletionLogProbs chosen = PreferenceForward.Require(forward.Chosen, nameof(forward.Chosen), Name);
        CompletionLogProbs rejected = PreferenceForward.Require(forward.Rejected, nameof(forward.Rejected), Name);
        Tensor chosenLogps = chosen.Means().clamp_max(LogProbabilityCap);
        Tensor rejectedLogps = rejected.Means().clamp_max(LogProbabilityCap);

        Tensor logOdds = chosenLogps.sub(rejectedLogps)
            .sub(LossMath.Log1mExp(chosenLogps).sub(LossMath.Log1mExp(rejectedLogps)));
        Tensor ratio = LossMath.LogSigmoid(logOdds);
        Tensor nll = LossMath.ChosenNll(chosen);
        double lambda = _options.Beta;
        Tensor loss = nll.sub(ratio.mul(lambda).mean());

        var metrics = LossMath.RewardMetrics(chosenLogps.mul(lambda), rejectedLogps.mul(lambda), chosenLogps, rejectedLogps);
        metrics["log_odds_ratio"] = ratio.detach().mean();
        metrics["log_odds_chosen"] = logOdds.detach().mean();
        metrics["nll_loss"] = nll.detach();
        return LossMath.Keep(loss, metrics);
    }
}
