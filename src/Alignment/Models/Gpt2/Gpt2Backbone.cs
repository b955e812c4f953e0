using Alignment.Models.Decoder;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Alignment.Models.Gpt2;

/// <summary>
/// <c>GPT2Model</c>: token embeddings plus learned absolute position embeddings (<c>wte</c>, <c>wpe</c>), the blocks
/// <c>h</c>, and the final LayerNorm <c>ln_f</c>. Dropout is not applied (TRL's default <c>disable_dropout</c>).
/// </summary>
internal sealed class Gpt2Backbone : DecoderBackbone
{
#pragma warning disable IDE1006 // Hugging Face names
    private Embedding wte, wpe;
    private ModuleList<Gpt2Block> h;
    private LayerNorm ln_f;
#pragma warning restore IDE1006
    private readonly DecoderBlock[] _layers;

    public Gpt2Backbone(string name, DecoderConfig c, ScalarType dtype) : base(name)
    {
        wte = nn.Embedding(c.VocabSize, c.HiddenSize, dtype: dtype);
        wpe = nn.Embedding(c.MaxPositionEmbeddings, c.HiddenSize, dtype: dtype);
        var blocks = Enumerable.Range(0, c.NumHiddenLayers).Select(i => new Gpt2Block($"{i}", c, i, dtype)).ToArray();
        _layers = blocks;
        h = new ModuleList<Gpt2Block>(blocks);
        ln_f = new LayerNorm("ln_f", c.HiddenSize, c.RmsNormEps, dtype);
        RegisterComponents();
    }

    public override Embedding Embeddings => wte;

    public override IReadOnlyList<DecoderBlock> Layers => _layers;

    public override nn.Module<Tensor, Tensor> Norm => ln_f;

    public override string LayerPrefix => "transformer.h.";

    public override RotaryEmbedding? RopeOf(int layer) => null;

    /// <summary><c>wte(ids) + wpe(positions)</c>: positions come from the attention mask, so left padding changes nothing.</summary>
    public override Tensor Embed(Tensor inputIds, Tensor positionIds, ScalarType? compute)
    {
        Tensor embedded = wte.call(inputIds).add(wpe.call(positionIds));
        return compute is { } dtype ? embedded.As(dtype) : embedded;
    }
}
