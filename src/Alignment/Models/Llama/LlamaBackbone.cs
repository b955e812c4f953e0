using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Alignment.Models.Llama;

/// <summary>Embeddings, decoder layers and the final norm: <c>LlamaModel</c> in transformers.</summary>
internal sealed class LlamaBackbone : nn.Module
{
    private Embedding embed_tokens;
    private ModuleList<LlamaDecoderLayer> layers;
    private RmsNorm norm;

    public LlamaBackbone(string name, DecoderConfig c, ScalarType dtype) : base(name)
    {
        embed_tokens = nn.Embedding(c.VocabSize, c.HiddenSize, dtype: dtype);
        layers = new ModuleList<LlamaDecoderLayer>(Enumerable.Range(0, c.NumHiddenLayers).Select(i => new LlamaDecoderLayer($"{i}", c, dtype)).ToArray());
        norm = new RmsNorm("norm", c.HiddenSize, c.RmsNormEps, dtype);
        RegisterComponents();
    }

    public Embedding Embeddings => embed_tokens;

    public IList<LlamaDecoderLayer> Layers => layers;

    public RmsNorm Norm => norm;
}
#pragma warning restore IDE1006
