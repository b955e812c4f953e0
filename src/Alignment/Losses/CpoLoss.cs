using static TorchSharp.torch;

namespace Alignment.Losses;

/// <summary>
/// Reference-free contrastive losses, as TRL's <c>CPOTrainer</c> implements them.
/// <list type="table">
/// <item><term>cpo</term><description>Xu et al. 2024: <c>−(1−ε)·logσ(β(log π_c − log π_r)) − ε·logσ(−β(…)) + α·NLL(chosen)</c>,
/// on summed log-probabilities; α = <c>cpo_alpha</c> (default 1).</description></item>
/// <item><term>simpo</term><description>Meng et al. 2024: <c>−logσ(β(avg log π_c − avg log π_r) − γ)</c> on per-token averages,
/// γ = <c>simpo_gamma</c>; with <c>cpo_alpha</c> &gt; 0 it adds <c>α·NLL(chosen)</c> (CPO-SimPO).</description></item>
/// </list>
/// NLL(chosen) is the token-level mean over the batch; rewards reported are <c>β·log π</c> (averaged for simpo).
/// </summary>
public sealed class CpoLoss : IPreferenceLoss
{
    readonly PreferenceLossOptions _options;
    readonly bool _simPo;
    readonly double _nllWeight;

    /// <summary>Creates <c>cpo</c> or <c>simpo</c>.</summary>
    /// <param name="type"><c>cpo</c> or <c>simpo</c>.</param>
    /// <param name="options">Hyper-parameters; defaults when null.</param>
    /// <exception cref="ArgumentException">Unknown type, or an option out of range.</exception>
    public CpoLoss(string type, PreferenceLossOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(type);
        Name = type.Trim().ToLowerInvariant();
        if (Name is not ("cpo" or "simpo"))
            throw new ArgumentException($"Unknown CPO loss type '{type}'. Known: cpo, simpo.", nameof(type));
        _options = options ?? new PreferenceLossOptions();
        _options.Validate();
        _simPo = Name == "simpo";
        _nllWeight = _options.CpoAlpha ?? (_simPo ? 0.0 : 1.0);
        Requirements = new LossRequirements(PreferenceDataKind.Paired, Reference: false,
            LengthNormalized: _simPo, ChosenNll: _nllWeight > 0) { SeparableByPair = true };
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public LossRequirements Requirements { get; }

    /// <inheritdoc />
    public PreferenceLossOutput Compute(PreferenceForward forward)
    {
        ArgumentNullException.ThrowIfNull(forward);
        using var scope = NewDisposeScope();
        CompletionLogProbs chosen = PreferenceForward.Require(forward.Chosen, nameof(forward.Chosen), Name);
        CompletionLogProbs rejected = PreferenceForward.Require(forward.Rejected, nameof(forward.Rejected), Name);
        Tensor chosenLogps = _simPo ? chosen.Means() : chosen.Sums;
        Tensor rejectedLogps = _simPo ? rejected.Means() : rejected.Sums;

        double beta = _options.Beta, smoothing = _options.LabelSmoothing;
        Tensor logits = chosenLogps.sub(rejectedLogps);
        if (_simPo)
            logits = logits.sub(_options.SimpoGamma / beta); // β·(Δ − γ/β) = βΔ − γ
        Tensor losses = LossMath.LogSigmoid(logits.mul(beta)).mul(-(1 - smoothing))
            .sub(LossMath.LogSigmoid(logits.mul(-beta)).mul(smoothing));
        Tensor loss = losses.mean();

        var metrics = LossMath.RewardMetrics(chosenLogps.mul(beta), rejectedLogps.mul(beta), chosenLogps, rejectedLogps);
        if (_nllWeight > 0)
        {
            Tensor nll = LossMath.ChosenNll(chosen);
            loss = loss.add(nll.mul(_nllWeight));
            metrics["nll_loss"] = nll.detach();
        }
        return LossMath.Keep(loss, metrics);
    }
}
