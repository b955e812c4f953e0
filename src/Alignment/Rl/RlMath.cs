using Alignment.Distributed;
using static TorchSharp.torch;

namespace Alignment.Rl;

/// <summary>How the per-token KL to the reference is estimated from sampled tokens (Schulman 2020, "Approximating KL").</summary>
public enum KlEstimator
{
    /// <summary>k1 = log π − log π_ref: unbiased, high variance, can be negative.</summary>
    K1,

    /// <summary>k3 = exp(log π_ref − log π) − (log π_ref − log π) − 1: unbiased, never negative, lower variance.</summary>
    K3,
}

/// <summary>The arithmetic of PPO, GRPO and RLOO, on [B, T] tensors whose mask marks the completion tokens.</summary>
internal static class RlMath
{
    /// <summary>Per-token KL estimate.</summary>
    /// <param name="logProbs">[B, T] policy log-probabilities of the sampled tokens.</param>
    /// <param name="referenceLogProbs">[B, T] reference log-probabilities of the same tokens.</param>
    /// <param name="estimator">k1 or k3.</param>
    public static Tensor Kl(Tensor logProbs, Tensor referenceLogProbs, KlEstimator estimator)
    {
        Tensor logRatio = referenceLogProbs.sub(logProbs); // log(π_ref / π)
        return estimator == KlEstimator.K1 ? logRatio.neg() : logRatio.exp().sub(logRatio).sub(1);
    }

    /// <summary>
    /// Generalised advantage estimation (Schulman et al. 2016) over the completion tokens:
    /// <c>δ_t = r_t + γ V_{t+1} − V_t</c>, <c>A_t = δ_t + γλ A_{t+1}</c>, with V and A beyond the last token 0.
    /// </summary>
    /// <param name="rewards">[B, T] per-token rewards (0 outside the mask).</param>
    /// <param name="values">[B, T] value estimates.</param>
    /// <param name="mask">[B, T] completion tokens, left-aligned (no gaps).</param>
    /// <param name="gamma">Discount γ.</param>
    /// <param name="lambda">GAE λ.</param>
    /// <returns>Advantages and returns (advantages + values), both [B, T], 0 outside the mask.</returns>
    public static (Tensor Advantages, Tensor Returns) Gae(Tensor rewards, Tensor values, Tensor mask, double gamma, double lambda)
    {
        using var scope = NewDisposeScope();
        Tensor m = mask.to_type(rewards.dtype);
        Tensor v = values.mul(m);
        long time = rewards.shape[1];
        Tensor next = zeros_like(rewards.select(1, 0));     // A_{t+1}
        Tensor nextValue = zeros_like(next);                 // V_{t+1}
        var columns = new Tensor[time];
        for (long t = time - 1; t >= 0; t--)
        {
            Tensor keep = m.select(1, t);
            Tensor delta = rewards.select(1, t).add(nextValue.mul(gamma)).sub(v.select(1, t));
            Tensor advantage = delta.add(next.mul(gamma * lambda)).mul(keep);
            columns[t] = advantage;
            next = advantage;
            nextValue = v.select(1, t);
        }
        Tensor advantages = stack(columns, 1);
        return (advantages.MoveToOuterDisposeScope(), advantages.add(v).mul(m).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Whitening over the masked entries: <c>(x − mean) / sqrt(var + 1e-8)</c> (mean added back unless
    /// <paramref name="shiftMean"/>), the mean and variance over every process's entries.
    /// </summary>
    public static Tensor Whiten(Tensor values, Tensor mask, bool shiftMean = true, IProcessGroup? processes = null)
    {
        using var scope = NewDisposeScope();
        processes ??= ProcessGroup.Single;
        Tensor m = mask.to_type(values.dtype);
        Tensor count = m.sum();
        Tensor total = values.mul(m).sum();
        processes.AllReduce(count);
        processes.AllReduce(total);
        count = count.clamp_min(1);
        Tensor mean = total.div(count);
        Tensor variance = values.sub(mean).square().mul(m).sum();
        processes.AllReduce(variance);
        variance = variance.div(count);
        Tensor whitened = values.sub(mean).mul(variance.add(1e-8).rsqrt());
        if (!shiftMean)
            whitened = whitened.add(mean);
        return whitened.mul(m).MoveToOuterDisposeScope();
    }

    /// <summary>Mean over the masked entries.</summary>
    public static Tensor MaskedMean(Tensor values, Tensor mask)
    {
        Tensor m = mask.to_type(values.dtype);
        return values.mul(m).sum().div(m.sum().clamp_min(1));
    }

    /// <summary>
    /// PPO's clipped surrogate: mean over tokens of <c>max(−A·ρ, −A·clip(ρ, 1 − ε, 1 + ε))</c> with
    /// <c>ρ = exp(log π − log π_old)</c>; also the share of clipped tokens and the approximate KL ½·mean((log ρ)²).
    /// </summary>
    public static (Tensor Loss, Tensor ClipFraction, Tensor ApproxKl, Tensor Ratio) ClippedSurrogate(Tensor logProbs, Tensor oldLogProbs,
        Tensor advantages, Tensor mask, double clipRange)
    {
        Tensor logRatio = logProbs.sub(oldLogProbs);
        Tensor ratio = logRatio.exp();
        Tensor unclipped = advantages.neg().mul(ratio);
        Tensor clipped = advantages.neg().mul(ratio.clamp(1 - clipRange, 1 + clipRange));
        Tensor loss = MaskedMean(unclipped.maximum(clipped), mask);
        Tensor clipFraction = MaskedMean(clipped.gt(unclipped).to_type(logProbs.dtype), mask);
        Tensor approxKl = MaskedMean(logRatio.square(), mask).mul(0.5);
        return (loss, clipFraction.detach(), approxKl.detach(), MaskedMean(ratio, mask).detach());
    }

    /// <summary>
    /// GRPO's per-token clipped objective as TRL writes it: with <c>ρ = exp(log π − log π_old)</c> per token, or
    /// (<paramref name="level"/> sequence, GSPO) <c>exp(Σ_t (log π − log π_old) m / Σ_t m)</c> for every token of a
    /// completion, <c>ℓ = −min(ρA, clip(ρ, 1 − ε_low, 1 + ε_high)·A)</c>. Also where the clip binds: low (ρ below
    /// 1 − ε_low with A &lt; 0) and high (ρ above 1 + ε_high with A &gt; 0).
    /// </summary>
    /// <returns>[B, T] losses and the low and high clip indicators (not masked).</returns>
    public static (Tensor PerToken, Tensor LowClipped, Tensor HighClipped) ClippedPerToken(Tensor logProbs, Tensor oldLogProbs, Tensor advantages,
        Tensor mask, double epsilonLow, double epsilonHigh, ImportanceSamplingLevel level)
    {
        Tensor logRatio = logProbs.sub(oldLogProbs);                                          // [B, T]
        if (level == ImportanceSamplingLevel.Sequence)
        {
            Tensor m = mask.to_type(logRatio.dtype);
            logRatio = logRatio.mul(m).sum(1, keepdim: true).div(m.sum(1, keepdim: true).clamp_min(1));   // [B, 1]
        }
        Tensor ratio = logRatio.exp();
        Tensor unclipped = ratio.mul(advantages);
        Tensor clipped = ratio.clamp(1 - epsilonLow, 1 + epsilonHigh).mul(advantages);
        Tensor perToken = unclipped.minimum(clipped).neg().expand_as(advantages);
        Tensor low = ratio.lt(1 - epsilonLow).logical_and(advantages.lt(0)).expand_as(advantages);
        Tensor high = ratio.gt(1 + epsilonHigh).logical_and(advantages.gt(0)).expand_as(advantages);
        return (perToken, low, high);
    }

    /// <summary>A minibatch's per-token loss [B, T] reduced as <paramref name="type"/> says (see <see cref="GrpoLossType"/>).</summary>
    /// <param name="perToken">[B, T] per-token losses.</param>
    /// <param name="mask">[B, T] the tokens that count.</param>
    /// <param name="type">The reduction.</param>
    /// <param name="maxCompletionLength">L of <see cref="GrpoLossType.DrGrpo"/>: the longest completion the rollout may sample.</param>
    public static Tensor Reduce(Tensor perToken, Tensor mask, GrpoLossType type, int maxCompletionLength)
    {
        Tensor m = mask.to_type(perToken.dtype);
        Tensor masked = perToken.mul(m);
        return type switch
        {
            GrpoLossType.Grpo => masked.sum(1).div(m.sum(1).clamp_min(1)).mean(),
            GrpoLossType.DrGrpo => masked.sum().div(perToken.shape[0] * (double)maxCompletionLength),
            _ => masked.sum().div(m.sum().clamp_min(1)),
        };
    }

    /// <summary>
    /// GRPO's advantage of each sample: its reward minus its group's mean, divided (<paramref name="scaling"/>) by the
    /// group's standard deviation, the whole step's (over every process), or nothing — plus 1e-4 when dividing, as TRL.
    /// Standard deviations are unbiased, as TRL's. A NaN reward (every reward function abstained) is left out of the
    /// means and deviations and gets advantage 0, as does every sample of a group with fewer than two scored ones when
    /// dividing by the group's deviation (TRL's nanmean, nanstd and nan_to_num).
    /// </summary>
    /// <param name="scores">[N] rewards, N a multiple of the group size, each group's samples adjacent.</param>
    /// <param name="groupSize">Samples per prompt (G ≥ 2).</param>
    /// <param name="scaling">What the centred reward is divided by.</param>
    /// <param name="processes">The processes whose rewards make up the step (for <see cref="RewardScaling.Batch"/>).</param>
    public static Tensor GroupAdvantages(Tensor scores, int groupSize, RewardScaling scaling, IProcessGroup? processes = null)
    {
        RequireGroups(scores, groupSize);
        var (grouped, scored) = (scores.view(-1, groupSize), scores.isnan().logical_not().view(-1, groupSize));
        Tensor centred = grouped.sub(NanMean(grouped, scored));
        Tensor scale = scaling switch
        {
            RewardScaling.Group => NanStd(grouped, scored, NanMean(grouped, scored)).add(1e-4),
            RewardScaling.Batch => BatchStd(scores, processes ?? ProcessGroup.Single).add(1e-4),
            _ => ones(1, dtype: scores.dtype, device: scores.device),
        };
        return NanToZero(centred.div(scale)).view(-1);
    }

    /// <summary>[G', 1] the mean of each row's scored entries (NaN for a row with none).</summary>
    static Tensor NanMean(Tensor grouped, Tensor scored) =>
        grouped.nan_to_num(0).sum(1, keepdim: true).div(scored.sum(1, keepdim: true).to_type(grouped.dtype));

    /// <summary>[G', 1] the unbiased deviation of each row's scored entries (NaN for a row with fewer than two).</summary>
    static Tensor NanStd(Tensor grouped, Tensor scored, Tensor mean)
    {
        Tensor n = scored.sum(1, keepdim: true).to_type(grouped.dtype);
        Tensor squares = grouped.sub(mean).square().nan_to_num(0).sum(1, keepdim: true);
        return where(n.gt(1), squares.div(n.sub(1)), full_like(n, double.NaN)).sqrt();
    }

    static Tensor NanToZero(Tensor x) => where(x.isnan(), zeros_like(x), x);

    /// <summary>The unbiased standard deviation of every process's scored <paramref name="scores"/> together (NaN ones left out).</summary>
    static Tensor BatchStd(Tensor scores, IProcessGroup processes)
    {
        Tensor scored = scores.isnan().logical_not().to_type(scores.dtype);
        Tensor values = scores.nan_to_num(0);
        Tensor sums = stack([values.sum(), values.square().sum(), scored.sum()]);
        processes.AllReduce(sums);
        Tensor n = sums[2];
        Tensor mean = sums[0].div(n);
        Tensor variance = sums[1].sub(mean.square().mul(n)).div(n.sub(1)).clamp_min(0);
        return where(n.gt(1), variance.sqrt(), full_like(n, double.NaN));
    }

    /// <summary>
    /// PPO's clipped value loss: ½·mean(max((V − R)², (clip(V, V_old ± ε) − R)²)) and the share of clipped tokens.
    /// </summary>
    public static (Tensor Loss, Tensor ClipFraction) ClippedValueLoss(Tensor values, Tensor oldValues, Tensor returns, Tensor mask, double clipRange)
    {
        Tensor clippedValues = oldValues.add(values.sub(oldValues).clamp(-clipRange, clipRange));
        Tensor unclippedLoss = values.sub(returns).square();
        Tensor clippedLoss = clippedValues.sub(returns).square();
        Tensor loss = MaskedMean(unclippedLoss.maximum(clippedLoss), mask).mul(0.5);
        return (loss, MaskedMean(clippedLoss.gt(unclippedLoss).to_type(values.dtype), mask).detach());
    }

    /// <summary>
    /// RLOO's advantage of each sample: its reward minus the mean of the other scored samples of its prompt. A NaN
    /// reward (unscorable) is left out of its siblings' baselines and gets advantage 0, as does the only scored sample
    /// of a group (TRL's nansum over scorable siblings, then nan_to_num).
    /// </summary>
    public static Tensor LeaveOneOut(Tensor scores, int groupSize)
    {
        RequireGroups(scores, groupSize);
        var (grouped, scored) = (scores.view(-1, groupSize), scores.isnan().logical_not().view(-1, groupSize));
        Tensor others = grouped.nan_to_num(0).sum(1, keepdim: true).sub(grouped).div(scored.sum(1, keepdim: true).sub(1).to_type(scores.dtype));
        return NanToZero(grouped.sub(others)).view(-1);
    }

    static void RequireGroups(Tensor scores, int groupSize)
    {
        if (groupSize < 2)
            throw new ArgumentOutOfRangeException(nameof(groupSize), groupSize, "A group needs at least two samples.");
        if (scores.dim() != 1 || scores.shape[0] % groupSize != 0)
            throw new ArgumentException($"{scores.shape[0]} scores do not split into groups of {groupSize}.", nameof(scores));
    }
}

/// <summary>
/// The adaptive KL coefficient of Ziegler et al. 2019: after each batch, <c>β ← β·(1 + clip(KL/target − 1, ±0.2)·n/horizon)</c>.
/// </summary>
internal sealed class AdaptiveKlController(double initial, double target, double horizon)
{
    /// <summary>The current coefficient β.</summary>
    public double Value { get; private set; } = initial > 0 ? initial : throw new ArgumentOutOfRangeException(nameof(initial));

    /// <summary>Updates β from the batch's measured KL and its number of samples.</summary>
    public void Update(double currentKl, int samples)
    {
        double error = Math.Clamp(currentKl / target - 1, -0.2, 0.2);
        Value *= 1 + error * samples / horizon;
    }
}
