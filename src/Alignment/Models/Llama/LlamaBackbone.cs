using Alignment.Models.Decoder;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Alignment.Models.Llama;

/// <summary>Embeddings, decoder layers and the final norm: <c>LlamaModel</c> in transformers.</summary>
internal sealed class LlamaBackbone : DecoderBackbone
{
#pragma warning disable IDE1006 // Hugging Face names
    private Embedding embed_tokens;
    private ModuleList<LlamaDecoderLayer> layers;
    private RmsNorm norm;
#pragma warning restore IDE1006
    private readonly DecoderBlock[] _layers;
    private readonly RotaryEmbedding _rope;

    public LlamaBackbone(string name, DecoderConfig c, ScalarType dtype) : base(name)
    {
        embed_tokens = nn.Embedding(c.VocabSize, c.HiddenSize, dtype: dtype);
        var blocks = Enumerable.Range(0, c.NumHiddenLayers).Select(i => new LlamaDecoderLayer($"{i}", c, dtype)).ToArray();
        _layers = blocks;
        layers = new ModuleList<LlamaDecoderLayer>(blocks);
        norm = new RmsNorm("norm", c.HiddenSize, c.RmsNormEps, dtype);
        _rope = new RotaryEmbedding(c);
        RegisterComponents();
    }

    public override Embedding Embeddings => embed_tokens;

    public override IReadOnlyList<DecoderBlock> Layers => _layers;

    public override nn.Module<Tensor, Tensor> Norm => norm;

    public override string LayerPrefix => "model.layers.";

    public override RotaryEmbedding? RopeOf(int layer) => _rope;
}
