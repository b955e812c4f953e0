using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Alignment.Models.Decoder;

/// <summary>
/// Embeddings, decoder layers and the final norm of one family (transformers' base model: <c>LlamaModel</c>,
/// <c>GPT2Model</c>), registered under the family's Hugging Face name.
/// </summary>
internal abstract class DecoderBackbone : nn.Module
{
    protected DecoderBackbone(string name) : base(name) { }

    /// <summary>The token embedding, [V, H] (the lm_head when tied).</summary>
    public abstract Embedding Embeddings { get; }

    public abstract IReadOnlyList<DecoderBlock> Layers { get; }

    /// <summary>The norm after the last layer.</summary>
    public abstract nn.Module<Tensor, Tensor> Norm { get; }

    /// <summary>Module-name prefix of layer i's parameters, e.g. <c>model.layers.</c>.</summary>
    public abstract string LayerPrefix { get; }

    /// <summary>The rotary embedding layer <paramref name="layer"/> takes, or null (it then gets empty cos/sin).</summary>
    public abstract RotaryEmbedding? RopeOf(int layer);

    /// <summary>The input of the first layer.</summary>
    /// <param name="inputIds">[B, T]</param>
    /// <param name="positionIds">[B, T]</param>
    /// <param name="compute">The dtype to compute in, or null for the embedding's.</param>
    /// <returns>[B, T, H]</returns>
    public virtual Tensor Embed(Tensor inputIds, Tensor positionIds, ScalarType? compute) => Embeddings.call(inputIds).As(compute ?? Embeddings.weight!.dtype);
}
