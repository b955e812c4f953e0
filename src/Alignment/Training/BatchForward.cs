using Alignment.Data;
using Alignment.Kernels;
using Alignment.Models;
using static TorchSharp.torch;

namespace Alignment.Training;

/// <summary>Forward passes shared by the trainers: per-token log-probabilities of the completions of a batch.</summary>
internal static class BatchForward
{
    /// <summary>Per-token log-probabilities [R, T] and the completion mask [R, T] of padded rows.</summary>
    public static (Tensor PerToken, Tensor Mask, Tensor Hidden) LogProbs(ICausalLM model, Tensor inputIds, Tensor attentionMask, Tensor targets)
    {
        Tensor hidden = model.Forward(inputIds, attentionMask);
        Tensor perToken = ModelLogProbs.Of(model, hidden, targets);
        return (perToken, targets.ne(TokenLogProbs.IgnoreIndex), hidden);
    }

    /// <summary>Per-sequence sums of a model's log-probabilities, under no-grad.</summary>
    public static Tensor Sums(ICausalLM model, Tensor inputIds, Tensor attentionMask, Tensor targets)
    {
        using var noGrad = no_grad();
        var (perToken, mask, _) = LogProbs(model, inputIds, attentionMask, targets);
        return TokenLogProbs.SequenceSum(perToken, mask);
    }

    /// <summary>
    /// The mean negative log-likelihood of the completion tokens of <paramref name="examples"/> (padded batch; prompt
    /// tokens are not scored), the number of scored tokens, and the tokens processed.
    /// </summary>
    public static (Tensor Nll, Tensor Count, long Tokens) CompletionNll(ICausalLM model, IReadOnlyList<TokenizedCompletion> examples, long paddingValue)
    {
        using CompletionBatch batch = CompletionCollator.Collate(examples, paddingValue, device: model.Device);
        var (nll, count) = MeanNll(model, model.Forward(batch.InputIds, batch.AttentionMask), batch.Targets);
        return (nll, count, batch.AttentionMask.sum().item<long>());
    }

    /// <summary>
    /// The mean NLL of the scored positions of <paramref name="targets"/> under the model's lm_head, and their count.
    /// When a gradient is wanted it is formed in the forward pass, chunk by chunk (its value, −1/count at each scored
    /// position, is known before the log-probabilities are): three matmuls and one pass, no logits kept.
    /// </summary>
    /// <param name="model">The model whose lm_head scores <paramref name="hidden"/>.</param>
    /// <param name="hidden">[R, T, H] final hidden states.</param>
    /// <param name="targets">[R, T], <see cref="TokenLogProbs.IgnoreIndex"/> where not scored.</param>
    public static (Tensor Nll, Tensor Count) MeanNll(ICausalLM model, Tensor hidden, Tensor targets)
    {
        Tensor mask = targets.ne(TokenLogProbs.IgnoreIndex);
        Tensor head = model.LmHeadWeight;
        if (!is_grad_enabled() || !(hidden.requires_grad || head.requires_grad) || !ModelLogProbs.Fusable(model))
            return MeanNll(ModelLogProbs.Of(model, hidden, targets), mask);
        ScalarType accumulation = TokenLogProbs.AccumulationType(hidden.dtype);
        Tensor gradient = mask.to_type(accumulation).div(mask.sum().to_type(accumulation).clamp_min(1)).neg(); // ∂(−Σ log p / N) / ∂ log p
        var (perToken, carrier) = FusedTokenLoss.Run(hidden, head, targets, gradient);
        var (nll, count) = MeanNll(perToken, mask);
        return (nll.add(carrier), count);
    }

    /// <summary>−Σ log p / max(1, tokens) over the masked positions, and the token count.</summary>
    /// <param name="perToken">[R, T]</param>
    /// <param name="mask">[R, T] true where scored.</param>
    public static (Tensor Nll, Tensor Count) MeanNll(Tensor perToken, Tensor mask)
    {
        Tensor count = mask.sum().to_type(perToken.dtype).clamp_min(1);
        return (perToken.where(mask, 0.0).sum().neg().div(count), count);
    }
}
