using Alignment.Kernels;
using Alignment.Models;
using Alignment.Distributed;
using Alignment.Training;
using static TorchSharp.torch;

namespace Alignment.Rl;

// The advantages of a rollout and the loss of each minibatch, by algorithm.
public sealed partial class PpoLoop
{
    /// <summary>Per-token advantages and returns [B, T] of the algorithm.</summary>
    (Tensor Advantages, Tensor Returns) Advantages(Rollout rollout, Tensor kl, Tensor nonScore, IProcessGroup processes)
    {
        Tensor scores = tensor(rollout.Scores, device: rollout.OldLogProbs.device).to_type(rollout.OldLogProbs.dtype);
        switch (_options.Algorithm)
        {
            case RlAlgorithm.Ppo:
                scores = scores.nan_to_num(0); // an unscorable sample takes no part in the loss (see Step)
                Tensor rewards = kl.mul(-KlCoef);
                Tensor last = ScalarHead.LastTokenIndex(rollout.Mask);                                    // the last completion position
                rewards = rewards.scatter_add(1, last.unsqueeze(1), scores.unsqueeze(1));
                var (advantages, returns) = RlMath.Gae(rewards, rollout.OldValues, rollout.Mask, _options.Gamma, _options.Lambda);
                return (RlMath.Whiten(advantages, rollout.Mask, processes: processes), returns);
            case RlAlgorithm.Grpo:
                Tensor grouped = RlMath.GroupAdvantages(scores, Group, _options.ScaleRewards, processes).unsqueeze(1).mul(rollout.Mask);
                return (grouped, zeros_like(grouped));
            default:
                Tensor leaveOneOut = RlMath.LeaveOneOut(scores.add(nonScore), Group).unsqueeze(1).mul(rollout.Mask);
                return (leaveOneOut, zeros_like(leaveOneOut));
        }
    }

    /// <summary>
    /// The loss of one minibatch of the rollout. PPO: the clipped surrogate's token mean plus the value loss. GRPO and
    /// RLOO: TRL's per-token objective (clip-higher, token- or sequence-level ratios, GRPO's k3 KL per token) reduced by
    /// <see cref="PpoOptions.LossType"/>. An entropy bonus when asked.
    /// </summary>
    StepOutput Update(Rollout rollout, Tensor lossMask, Tensor advantages, Tensor returns, long[] rows)
    {
        bool ppo = _options.Algorithm == RlAlgorithm.Ppo;
        if (rows.Length == 0) // the minibatch holds none of this process's rows: no gradient, the same metric names
            return new StepOutput(zeros(1).sum(), UpdateMetricNames().ToDictionary(name => name, _ => zeros(1).sum()), 0) { Items = 0 };
        Tensor index = tensor(rows, device: rollout.Mask.device);
        Tensor mask = lossMask.index_select(0, index);
        Tensor hidden = _policy.Model.Forward(rollout.Batch.InputIds.index_select(0, index), rollout.Batch.AttentionMask.index_select(0, index));
        Tensor logProbs = ModelLogProbs.Of(_policy.Model, hidden, rollout.Batch.Targets.index_select(0, index));
        Tensor oldLogProbs = rollout.OldLogProbs.index_select(0, index);
        Tensor rowAdvantages = advantages.index_select(0, index);
        var (surrogate, clipFraction, approxKl, ratio) = RlMath.ClippedSurrogate(logProbs, oldLogProbs, rowAdvantages, mask, _options.ClipRange);
        var metrics = new Dictionary<string, Tensor> { ["policy/clipfrac_avg"] = clipFraction, ["policy/approxkl_avg"] = approxKl, ["val/ratio"] = ratio };
        Tensor loss;
        double items;
        if (ppo)
        {
            Tensor policyLoss = surrogate;
            Tensor values = _valueHead!.PerToken(hidden).to_type(logProbs.dtype);
            var (valueLoss, valueClip) = RlMath.ClippedValueLoss(values, rollout.OldValues.index_select(0, index), returns.index_select(0, index), mask, _options.ClipRangeValue);
            loss = policyLoss.add(valueLoss.mul(_options.VfCoef));
            metrics["loss/policy_avg"] = policyLoss.detach();
            metrics["loss/value_avg"] = valueLoss.detach();
            metrics["val/clipfrac_avg"] = valueClip;
            items = mask.sum().item<long>();
        }
        else
        {
            var (perToken, low, high) = RlMath.ClippedPerToken(logProbs, oldLogProbs, rowAdvantages, mask,
                _options.ClipRange, _options.EpsilonHigh ?? _options.ClipRange, _options.ImportanceSamplingLevel);
            metrics["loss/policy_avg"] = RlMath.MaskedMean(perToken, mask).detach();
            if (_options.Algorithm == RlAlgorithm.Grpo && KlCoef > 0)
                perToken = perToken.add(RlMath.Kl(logProbs, rollout.ReferenceLogProbs.index_select(0, index), KlEstimator.K3).mul(KlCoef));
            loss = RlMath.Reduce(perToken, mask, _options.LossType, _options.ResponseLength);
            metrics["clip_ratio/low_mean"] = RlMath.MaskedMean(low.to_type(logProbs.dtype), mask).detach();
            metrics["clip_ratio/high_mean"] = RlMath.MaskedMean(high.to_type(logProbs.dtype), mask).detach();
            metrics["clip_ratio/region_mean"] = RlMath.MaskedMean(low.logical_or(high).to_type(logProbs.dtype), mask).detach();
            // dapo: the token mean over the whole update (every minibatch, every process); the others: minibatches weigh equally.
            items = _options.LossType == GrpoLossType.Dapo ? mask.sum().item<long>() : 1;
        }
        if (_options.EntropyCoef > 0)
            loss = loss.sub(RlMath.MaskedMean(logProbs.neg(), mask).mul(_options.EntropyCoef));
        long tokens = mask.sum().item<long>();
        return new StepOutput(loss, metrics, tokens) { Items = items };
    }

    IEnumerable<string> UpdateMetricNames() =>
        _valueHead is null
            ? ["loss/policy_avg", "policy/clipfrac_avg", "policy/approxkl_avg", "val/ratio", "clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean"]
            : ["loss/policy_avg", "policy/clipfrac_avg", "policy/approxkl_avg", "val/ratio", "loss/value_avg", "val/clipfrac_avg"];
}
