using static TorchSharp.torch;

namespace Alignment.Models;

/// <summary>
/// What trainers, generation and evaluation need from a causal language model: hidden states for a batch of token
/// ids, and the lm_head weight that turns them into logits (so that <c>TokenLogProbs.FromHidden</c> never builds them).
/// </summary>
public interface ICausalLM
{
    /// <summary>The architecture.</summary>
    DecoderConfig Config { get; }

    /// <summary>[V, H] output projection (the embedding matrix when embeddings are tied).</summary>
    Tensor LmHeadWeight { get; }

    /// <summary>The device the weights live on.</summary>
    Device Device { get; }

    /// <summary>Runs the decoder.</summary>
    /// <param name="inputIds">[B, T] int64 token ids (only the new tokens when a cache is given).</param>
    /// <param name="attentionMask">[B, P + T] 1 for real tokens, 0 for padding, covering cached and new positions; null = all real.
    /// Values 1..n mark n sequences packed into one row: a token attends only to earlier tokens of its own sequence.</param>
    /// <param name="positionIds">[B, T] positions; null = counted from the attention mask (padding-aware), as transformers does.</param>
    /// <param name="cache">A cache to read and extend, or null.</param>
    /// <returns>[B, T, H] final hidden states (after the last norm).</returns>
    Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? positionIds = null, KvCache? cache = null);

    /// <summary>Logits of hidden states: <c>hidden · LmHeadWeightᵀ</c>, soft-capped when the config says so (Gemma 2).</summary>
    /// <param name="hidden">[..., H]</param>
    /// <returns>[..., V]</returns>
    Tensor Logits(Tensor hidden);
}
