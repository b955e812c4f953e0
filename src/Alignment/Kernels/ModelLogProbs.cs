using Alignment.Models;
using static TorchSharp.torch;

namespace Alignment.Kernels;

/// <summary>
/// Per-token log-probabilities under a model's own head, by the fastest exact route: the fused kernels, which
/// multiply hidden states by the lm_head chunk by chunk, or — for a model whose logits are soft-capped (Gemma 2's
/// <c>final_logit_softcapping</c>), which those kernels do not apply — its full logits through
/// <see cref="TokenLogProbs.FromLogits"/>. Trainers, rollouts and evaluation all score through here.
/// </summary>
internal static class ModelLogProbs
{
    /// <summary>Whether the fused kernels compute this model's log-probabilities (no final-logit soft-capping).</summary>
    public static bool Fusable(ICausalLM model) => model.Config.FinalLogitSoftcapping is null;

    /// <param name="model">The model whose head scores the states.</param>
    /// <param name="hidden">[B, T, H] final hidden states of <paramref name="model"/>.</param>
    /// <param name="targets">[B, T], <see cref="TokenLogProbs.IgnoreIndex"/> where not scored.</param>
    /// <returns>[B, T], 0 where not scored.</returns>
    public static Tensor Of(ICausalLM model, Tensor hidden, Tensor targets) => Fusable(model)
        ? TokenLogProbs.FromHidden(hidden, model.LmHeadWeight, targets)
        : TokenLogProbs.FromLogits(model.Logits(hidden), targets);

    /// <summary>WPO's per-sequence log-weights (no gradient), as <see cref="TokenLogProbs.WpoLogWeightsFromHidden"/>.</summary>
    /// <returns>[B]</returns>
    public static Tensor WpoLogWeights(ICausalLM model, Tensor hidden, Tensor targets)
    {
        using var noGrad = no_grad();
        return Fusable(model)
            ? TokenLogProbs.WpoLogWeightsFromHidden(hidden.detach(), model.LmHeadWeight.detach(), targets)
            : TokenLogProbs.WpoLogWeights(model.Logits(hidden.detach()), targets);
    }
}
