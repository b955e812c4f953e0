namespace Alignment.Losses;

/// <summary>The f-divergence that regularises the policy towards the reference (f-DPO, Wang et al. 2023).</summary>
public enum FDivergence
{
    /// <summary>Reverse KL, standard DPO: the score of a completion is its log-ratio.</summary>
    ReverseKl,

    /// <summary>Forward KL: score <c>−exp(−log-ratio)</c>.</summary>
    ForwardKl,

    /// <summary>Jensen–Shannon: score <c>log σ(log-ratio)</c> (equal to <c>log(2u/(1+u)) − log 2</c>).</summary>
    JensenShannon,

    /// <summary>α-divergence: score <c>−exp(−α·log-ratio)/α</c>; α from <see cref="PreferenceLossOptions.AlphaDivergenceCoef"/>.</summary>
    AlphaDivergence,
}

/// <summary>
/// Hyper-parameters of the built-in losses, named as in TRL's configs (<c>beta</c>, <c>label_smoothing</c>, ...).
/// Each loss reads the fields that apply to it and validates them when it is created.
/// </summary>
public sealed record PreferenceLossOptions
{
    /// <summary><c>beta</c>: strength of the implicit KL regularisation (DPO family, KTO, CPO/SimPO); ORPO's λ. Must be &gt; 0.</summary>
    public double Beta { get; init; } = 0.1;

    /// <summary><c>label_smoothing</c> ε: assumed probability that a preference label is flipped (cDPO, robust, EXO, AOT, CPO). In [0, 0.5).</summary>
    public double LabelSmoothing { get; init; }

    /// <summary><c>reference_free</c>: use a uniform reference (log-ratios are the policy's log-probabilities).</summary>
    public bool ReferenceFree { get; init; }

    /// <summary><c>f_divergence_type</c> for the reference-based losses.</summary>
    public FDivergence FDivergence { get; init; } = FDivergence.ReverseKl;

    /// <summary><c>f_alpha_divergence_coef</c> α of <see cref="Losses.FDivergence.AlphaDivergence"/>; in (0, 1].</summary>
    public double AlphaDivergenceCoef { get; init; } = 0.5;

    /// <summary><c>use_weighting</c>: weight each pair by its WPO weight (Zhou et al. 2024).</summary>
    public bool UseWeighting { get; init; }

    /// <summary><c>ld_alpha</c>: LD-DPO's weight (in [0, 1]) on the policy's tokens past the shorter completion's length; null = off.</summary>
    public double? LdAlpha { get; init; }

    /// <summary><c>rpo_alpha</c>: weight of the chosen completions' NLL added to the loss (RPO); null = off.</summary>
    public double? RpoAlpha { get; init; }

    /// <summary><c>discopop_tau</c>: temperature of DiscoPOP's mixing sigmoid. Must be &gt; 0.</summary>
    public double DiscopopTau { get; init; } = 0.05;

    /// <summary><c>simpo_gamma</c> γ: SimPO's target reward margin.</summary>
    public double SimpoGamma { get; init; } = 0.5;

    /// <summary><c>cpo_alpha</c>: weight of the chosen NLL in CPO (default 1) and CPO-SimPO (SimPO default 0).</summary>
    public double? CpoAlpha { get; init; }

    /// <summary><c>desirable_weight</c> λD of KTO. Must be &gt; 0.</summary>
    public double DesirableWeight { get; init; } = 1.0;

    /// <summary><c>undesirable_weight</c> λU of KTO. Must be &gt; 0.</summary>
    public double UndesirableWeight { get; init; } = 1.0;

    /// <summary>Checks the fields every built-in loss reads.</summary>
    /// <exception cref="ArgumentException">A field is out of range; the message names it.</exception>
    public void Validate() => new OptionErrors()
        .Check(Beta > 0 && !double.IsInfinity(Beta), $"beta must be a finite number > 0, got {Beta}.")
        .Check(LabelSmoothing >= 0 && LabelSmoothing < 0.5, $"label_smoothing must be in [0, 0.5), got {LabelSmoothing}.")
        .Check(AlphaDivergenceCoef > 0 && AlphaDivergenceCoef <= 1, $"f_alpha_divergence_coef must be in (0, 1], got {AlphaDivergenceCoef}.")
        .Check(LdAlpha is not { } ld || ld >= 0 && ld <= 1, $"ld_alpha must be in [0, 1], got {LdAlpha}.")
        .Check(RpoAlpha is not { } rpo || rpo >= 0 && !double.IsInfinity(rpo), $"rpo_alpha must be a finite number >= 0, got {RpoAlpha}.")
        .Check(DiscopopTau > 0 && !double.IsInfinity(DiscopopTau), $"discopop_tau must be a finite number > 0, got {DiscopopTau}.")
        .Check(double.IsFinite(SimpoGamma), $"simpo_gamma must be finite, got {SimpoGamma}.")
        .Check(CpoAlpha is not { } cpo || cpo >= 0 && !double.IsInfinity(cpo), $"cpo_alpha must be a finite number >= 0, got {CpoAlpha}.")
        .Check(DesirableWeight > 0 && !double.IsInfinity(DesirableWeight), $"desirable_weight must be a finite number > 0, got {DesirableWeight}.")
        .Check(UndesirableWeight > 0 && !double.IsInfinity(UndesirableWeight), $"undesirable_weight must be a finite number > 0, got {UndesirableWeight}.")
        .ThrowIfAny();
}
