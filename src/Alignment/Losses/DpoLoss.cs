using static TorchSharp.torch;

namespace Alignment.Losses;

/// <summary>
/// The DPO family: reference-based losses on paired data, each a function of the policy/reference log-ratios of the
/// chosen and rejected completions, as defined in TRL's <c>DPOTrainer</c>.
/// </summary>
/// <remarks>
/// <para>With <c>c = log π(y_c) − log π_ref(y_c)</c>, <c>r</c> likewise, scores <c>s_c = f(c)</c>, <c>s_r = f(r)</c> for the chosen
/// f-divergence (identity for reverse KL), <c>Δ = s_c − s_r</c>, β = <c>beta</c>, ε = <c>label_smoothing</c>:</para>
/// <list type="table">
/// <item><term>sigmoid</term><description>DPO / cDPO: <c>−(1−ε)·logσ(βΔ) − ε·logσ(−βΔ)</c></description></item>
/// <item><term>robust</term><description><c>(−(1−ε)·logσ(βΔ) + ε·logσ(−βΔ)) / (1−2ε)</c></description></item>
/// <item><term>hinge</term><description>SLiC: <c>relu(1 − βΔ)</c></description></item>
/// <item><term>ipo</term><description><c>(Δ̄ − 1/(2β))²</c>, Δ̄ from per-token averaged log-probabilities</description></item>
/// <item><term>exo_pair</term><description><c>σ(βΔ)(logσ(βΔ) − log(1−ε)) + σ(−βΔ)(logσ(−βΔ) − log ε)</c>; ε must be above 0 (the EXO paper recommends 10⁻³), as in TRL 1.x</description></item>
/// <item><term>nca_pair</term><description><c>−logσ(βs_c) − ½logσ(−βs_c) − ½logσ(−βs_r)</c></description></item>
/// <item><term>sppo_hard</term><description><c>(s_c − 1/(2β))² + (s_r + 1/(2β))²</c></description></item>
/// <item><term>apo_zero</term><description><c>1 − σ(βc) + σ(βr)</c></description></item>
/// <item><term>apo_down</term><description><c>σ(βc) + 1 − σ(βΔ)</c></description></item>
/// <item><term>bco_pair</term><description><c>−logσ(βs_c) − logσ(−βs_r)</c> (TRL 1.x; earlier TRL subtracted a running mean of the rewards from both)</description></item>
/// <item><term>aot</term><description>sigmoid loss on <c>sort(log π_c − log π_r) − sort(log ref_c − log ref_r)</c> over the batch</description></item>
/// <item><term>aot_unpaired</term><description>sigmoid loss on <c>sort(c) − sort(r)</c> over the batch (alias <c>aot_pair</c>)</description></item>
/// <item><term>discopop</term><description><c>−logσ(βΔ)·(1 − σ(βΔ/τ)) + exp(−βΔ)·σ(βΔ/τ)</c>, computed stably</description></item>
/// <item><term>sigmoid_norm</term><description><c>−logσ(β(s_c/|y_c| − s_r/|y_r|))</c>: length-normalised, reference kept</description></item>
/// <item><term>sft</term><description>the chosen NLL <c>−Σ log π(y_c) / Σ |y_c|</c> alone</description></item>
/// </list>
/// <para>Modifiers: <c>use_weighting</c> multiplies each pair's loss by its detached WPO weight
/// <c>min(1, exp(w_c + w_r))</c>; <c>ld_alpha</c> replaces the policy's log-probability by
/// <c>front + α·rear</c>, where front sums the first <c>min(|y_c|, |y_r|)</c> completion tokens; <c>rpo_alpha</c> adds
/// <c>rpo_alpha · NLL(chosen)</c>; <c>reference_free</c> sets the reference log-probabilities to 0.</para>
/// <para>Rewards reported: <c>β·(log π − log π_ref)</c> per completion (per-token averages for ipo).</para>
/// </remarks>
public sealed class DpoLoss : IPreferenceLoss
{
    /// <summary>The loss types this class implements, by their TRL names.</summary>
    public static IReadOnlyList<string> Types { get; } =
    [
        "sigmoid", "robust", "hinge", "ipo", "exo_pair", "nca_pair", "sppo_hard", "apo_zero", "apo_down",
        "bco_pair", "aot", "aot_unpaired", "discopop", "sigmoid_norm", "sft",
    ];

    readonly PreferenceLossOptions _options;

    /// <summary>Creates one loss of the family.</summary>
    /// <param name="type">One of <see cref="Types"/> (or <c>aot_pair</c>, an alias of <c>aot_unpaired</c>).</param>
    /// <param name="options">Hyper-parameters; defaults when null.</param>
    /// <exception cref="ArgumentException">Unknown type, an option out of range, or <c>exo_pair</c> without label smoothing.</exception>
    public DpoLoss(string type, PreferenceLossOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(type);
        string normalized = type.Trim().ToLowerInvariant() == "aot_pair" ? "aot_unpaired" : type.Trim().ToLowerInvariant();
        if (!Types.Contains(normalized))
            throw new ArgumentException($"Unknown DPO loss type '{type}'. Known: {string.Join(", ", Types)}.", nameof(type));
        _options = options ?? new PreferenceLossOptions();
        _options.Validate();
        if (normalized == "exo_pair" && _options.LabelSmoothing == 0)
            throw new ArgumentException("exo_pair needs label_smoothing > 0 (with 0 its loss is +∞); the EXO paper recommends 1e-3.", nameof(options));
        Name = normalized;
        bool needsReference = normalized != "sft" && !_options.ReferenceFree;
        Requirements = new LossRequirements(PreferenceDataKind.Paired, needsReference,
            PerTokenLogProbs: _options.LdAlpha is not null,
            WpoWeights: _options.UseWeighting,
            LengthNormalized: normalized is "ipo" or "sigmoid_norm",
            ChosenNll: normalized == "sft" || _options.RpoAlpha is > 0)
        {
            SeparableByPair = normalized is not ("aot" or "aot_unpaired"), // the AOT losses sort over the batch
        };
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public LossRequirements Requirements { get; }

    /// <summary>The options this loss was created with.</summary>
    public PreferenceLossOptions Options => _options;

    /// <inheritdoc />
    public PreferenceLossOutput Compute(PreferenceForward forward)
    {
        ArgumentNullException.ThrowIfNull(forward);
        using var scope = NewDisposeScope();
        CompletionLogProbs chosen = PreferenceForward.Require(forward.Chosen, nameof(forward.Chosen), Name);
        CompletionLogProbs rejected = PreferenceForward.Require(forward.Rejected, nameof(forward.Rejected), Name);
        var (policyChosen, policyRejected) = PolicyLogps(chosen, rejected);
        var (referenceChosen, referenceRejected) = ReferenceLogps(forward, policyChosen, policyRejected);

        double beta = _options.Beta, smoothing = _options.LabelSmoothing;
        Tensor chosenRatio = policyChosen.sub(referenceChosen);      // c [B]
        Tensor rejectedRatio = policyRejected.sub(referenceRejected); // r [B]
        if (Name == "ipo")
        {
            chosenRatio = chosenRatio.div(Lengths(chosen));
            rejectedRatio = rejectedRatio.div(Lengths(rejected));
        }
        Tensor chosenScore = Score(chosenRatio);
        Tensor rejectedScore = Score(rejectedRatio);
        Tensor delta = chosenScore.sub(rejectedScore);              // Δ [B]

        Tensor losses = Name switch
        {
            "sigmoid" => Smoothed(delta.mul(beta), smoothing),
            "robust" => LossMath.LogSigmoid(delta.mul(beta)).mul(-(1 - smoothing))
                .add(LossMath.LogSigmoid(delta.mul(-beta)).mul(smoothing)).div(1 - 2 * smoothing),
            "hinge" => delta.mul(-beta).add(1).relu(),
            "ipo" => delta.sub(1 / (2 * beta)).square(),
            "exo_pair" => Exo(delta.mul(beta), smoothing),
            "nca_pair" => LossMath.LogSigmoid(chosenScore.mul(beta)).neg()
                .sub(LossMath.LogSigmoid(chosenScore.mul(-beta)).mul(0.5))
                .sub(LossMath.LogSigmoid(rejectedScore.mul(-beta)).mul(0.5)),
            "sppo_hard" => chosenScore.sub(0.5 / beta).square().add(rejectedScore.add(0.5 / beta).square()),
            "apo_zero" => chosenRatio.mul(-beta).sigmoid().add(rejectedRatio.mul(beta).sigmoid()), // 1 − σ(x) = σ(−x)
            "apo_down" => chosenRatio.mul(beta).sigmoid().add(delta.mul(-beta).sigmoid()),
            "bco_pair" => LossMath.LogSigmoid(chosenScore.mul(beta)).neg().sub(LossMath.LogSigmoid(rejectedScore.mul(-beta))),
            "aot" => Smoothed(Sorted(policyChosen.sub(policyRejected)).sub(Sorted(referenceChosen.sub(referenceRejected))).mul(beta), smoothing),
            "aot_unpaired" => Smoothed(Sorted(chosenRatio).sub(Sorted(rejectedRatio)).mul(beta), smoothing),
            "discopop" => DiscoPop(delta.mul(beta), _options.DiscopopTau),
            "sigmoid_norm" => Smoothed(chosenScore.div(Lengths(chosen)).sub(rejectedScore.div(Lengths(rejected))).mul(beta), 0),
            "sft" => LossMath.ChosenNll(chosen).expand(chosen.Count),
            _ => throw new InvalidOperationException($"Unhandled loss type {Name}."),
        };

        if (_options.UseWeighting)
            losses = losses.mul(WpoWeights(chosen, rejected));
        Tensor loss = losses.mean();
        var metrics = LossMath.RewardMetrics(chosenRatio.mul(beta), rejectedRatio.mul(beta), policyChosen, policyRejected);
        if (_options.RpoAlpha is > 0 and var rpo)
        {
            Tensor nll = LossMath.ChosenNll(chosen);
            loss = loss.add(nll.mul(rpo));
            metrics["nll_loss"] = nll.detach();
        }
        return LossMath.Keep(loss, metrics);
    }

    /// <summary>The policy's log-probabilities, LD-DPO-weighted when <c>ld_alpha</c> is set.</summary>
    (Tensor Chosen, Tensor Rejected) PolicyLogps(CompletionLogProbs chosen, CompletionLogProbs rejected)
    {
        if (_options.LdAlpha is not { } alpha)
            return (chosen.Sums, rejected.Sums);
        Tensor shared = chosen.TokenCounts.minimum(rejected.TokenCounts); // l_p [B]
        return (LengthDesensitized(chosen, shared, alpha, "Chosen"), LengthDesensitized(rejected, shared, alpha, "Rejected"));
    }

    Tensor LengthDesensitized(CompletionLogProbs side, Tensor sharedLength, double alpha, string field)
    {
        Tensor tokens = side.TokenValues ?? throw new InvalidOperationException(
            $"ld_alpha needs per-token log-probabilities: build PreferenceForward.{field} with CompletionLogProbs.FromTokens.");
        Tensor mask = side.Mask!;
        Tensor rank = mask.to_type(ScalarType.Int64).cumsum(1).sub(1);           // index among counted tokens [B, T]
        Tensor front = mask.logical_and(rank.lt(sharedLength.to_type(ScalarType.Int64).unsqueeze(1)));
        Tensor rear = mask.logical_and(front.logical_not());
        Tensor frontSum = tokens.where(front, 0.0).sum(1);
        Tensor rearSum = tokens.where(rear, 0.0).sum(1);
        return frontSum.add(rearSum.mul(alpha));
    }

    (Tensor Chosen, Tensor Rejected) ReferenceLogps(PreferenceForward forward, Tensor policyChosen, Tensor policyRejected)
    {
        if (!Requirements.Reference)
            return (zeros_like(policyChosen), zeros_like(policyRejected));
        CompletionLogProbs chosen = PreferenceForward.Require(forward.ReferenceChosen, nameof(forward.ReferenceChosen), Name);
        CompletionLogProbs rejected = PreferenceForward.Require(forward.ReferenceRejected, nameof(forward.ReferenceRejected), Name);
        return (chosen.Sums.detach().to_type(policyChosen.dtype), rejected.Sums.detach().to_type(policyRejected.dtype));
    }

    static Tensor Lengths(CompletionLogProbs side) => side.TokenCounts.to_type(side.Sums.dtype).clamp_min(1);

    /// <summary>The f-divergence score of a log-ratio.</summary>
    Tensor Score(Tensor logRatio) => _options.FDivergence switch
    {
        FDivergence.ReverseKl => logRatio,
        FDivergence.ForwardKl => LossMath.CappedExp(logRatio.neg()).neg(),
        FDivergence.JensenShannon => LossMath.LogSigmoid(logRatio),
        FDivergence.AlphaDivergence => LossMath.CappedExp(logRatio.mul(-_options.AlphaDivergenceCoef)).div(-_options.AlphaDivergenceCoef),
        _ => throw new InvalidOperationException($"Unhandled f-divergence {_options.FDivergence}."),
    };

    /// <summary>Label-smoothed sigmoid loss of logits z: <c>−(1−ε)·logσ(z) − ε·logσ(−z)</c>.</summary>
    static Tensor Smoothed(Tensor z, double smoothing)
    {
        Tensor loss = LossMath.LogSigmoid(z).mul(-(1 - smoothing));
        return smoothing == 0 ? loss : loss.sub(LossMath.LogSigmoid(z.neg()).mul(smoothing));
    }

    static Tensor Exo(Tensor z, double smoothing) =>
        z.sigmoid().mul(LossMath.LogSigmoid(z).sub(Math.Log(1 - smoothing)))
            .add(z.neg().sigmoid().mul(LossMath.LogSigmoid(z.neg()).sub(Math.Log(smoothing))));

    static Tensor Sorted(Tensor values) => values.sort(0).Values;

    /// <summary>DiscoPOP with both mixture terms in log space, so that neither 0·∞ nor exp overflow can occur.</summary>
    static Tensor DiscoPop(Tensor z, double tau)
    {
        Tensor logistic = LossMath.LogSigmoid(z).neg().mul(z.div(-tau).sigmoid());          // −logσ(z)·(1 − σ(z/τ))
        Tensor exponential = z.neg().add(LossMath.LogSigmoid(z.div(tau))).exp();            // exp(−z)·σ(z/τ)
        return logistic.add(exponential);
    }

    static Tensor WpoWeights(CompletionLogProbs chosen, CompletionLogProbs rejected)
    {
        Tensor c = chosen.WpoLogWeights ?? throw new InvalidOperationException("use_weighting needs PreferenceForward.Chosen.WpoLogWeights.");
        Tensor r = rejected.WpoLogWeights ?? throw new InvalidOperationException("use_weighting needs PreferenceForward.Rejected.WpoLogWeights.");
        return c.add(r).detach().exp().clamp_max(1).to_type(chosen.Sums.dtype);
    }
}
