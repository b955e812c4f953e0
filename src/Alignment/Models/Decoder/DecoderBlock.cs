using static TorchSharp.torch;

namespace Alignment.Models.Decoder;

/// <summary>One decoder layer of any family: what the model's layer loop, checkpointing and LoRA need from it.</summary>
internal abstract class DecoderBlock : nn.Module
{
    protected DecoderBlock(string name) : base(name) { }

    /// <param name="hidden">[B, T, H]</param>
    /// <param name="cos">[B, 1, T, hd] rotary cosines (empty for families without rotary embeddings)</param>
    /// <param name="sin">[B, 1, T, hd] rotary sines (empty likewise)</param>
    /// <param name="mask">[B, 1, T, S] additive (0 or the dtype's minimum)</param>
    /// <param name="cache">Layer cache to extend, or null.</param>
    /// <returns>[B, T, H]</returns>
    public abstract Tensor Forward(Tensor hidden, Tensor cos, Tensor sin, Tensor mask, KvCache.Layer? cache);

    /// <summary>The layer's projections by their Hugging Face module names relative to the layer.</summary>
    public abstract IEnumerable<(string Name, Projection Projection)> Projections { get; }
}
