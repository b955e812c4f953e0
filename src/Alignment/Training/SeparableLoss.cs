using Alignment.Kernels;
using Alignment.Losses;
using static TorchSharp.torch;

namespace Alignment.Training;

/// <summary>
/// The fused lm_head path of a loss that is <see cref="LossRequirements.SeparableByPair"/>: its gradients are formed
/// pair by pair in the forward pass (<see cref="FusedTokenLoss"/>), each pair's from the loss itself evaluated with
/// the pair's log-probabilities as leaves and every other pair's set to 0.
/// </summary>
internal static class SeparableLoss
{
    /// <summary>
    /// Whether the fused path applies: the loss is separable and the lm_head weight trains. With a frozen head (LoRA)
    /// <see cref="TokenLogProbs.FromHidden"/> already does two matmuls, as the fused path would, without keeping a
    /// pair's logits, so it stays.
    /// </summary>
    public static bool Applies(LossRequirements needs, Tensor hidden, Tensor lmHeadWeight) =>
        needs.SeparableByPair && is_grad_enabled() && lmHeadWeight.requires_grad;

    /// <summary>Per-token log-probabilities [2B, T] (detached) of a paired batch, and the zero scalar that carries the gradients.</summary>
    /// <param name="loss">The separable loss.</param>
    /// <param name="hidden">[2B, T, H] chosen rows first, then rejected.</param>
    /// <param name="lmHeadWeight">[V, H].</param>
    /// <param name="targets">[2B, T], <see cref="TokenLogProbs.IgnoreIndex"/> where not scored.</param>
    /// <param name="forwardOf">The loss's input from per-token log-probabilities [2B, T].</param>
    public static (Tensor PerToken, Tensor Gradient) Run(IPreferenceLoss loss, Tensor hidden, Tensor lmHeadWeight, Tensor targets,
        Func<Tensor, PreferenceForward> forwardOf) =>
        FusedTokenLoss.Run(hidden, lmHeadWeight, targets, FusedTokenLoss.Pairs((int)hidden.shape[0] / 2),
            (_, values) => Gradient(loss, forwardOf, values));

    /// <summary>The loss's gradient with respect to <paramref name="values"/> [2B, T] (0 where it does not depend on them).</summary>
    static Tensor Gradient(IPreferenceLoss loss, Func<Tensor, PreferenceForward> forwardOf, Tensor values)
    {
        using var scope = NewDisposeScope();
        using var grad = enable_grad();
        Tensor leaf = values.detach().requires_grad_(true);
        Tensor value = loss.Compute(forwardOf(leaf)).Loss;
        if (!value.requires_grad)
            return zeros_like(values).MoveToOuterDisposeScope();
        Tensor? gradient = autograd.grad([value], [leaf], allow_unused: true)[0];
        return (gradient is null || gradient.IsInvalid ? zeros_like(values) : gradient).MoveToOuterDisposeScope();
    }
}
