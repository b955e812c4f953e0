using Alignment.Models.Decoder;
using Alignment.Models.Llama;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Alignment.Models.Gemma;

/// <summary>
/// <c>Gemma2Model</c>/<c>Gemma3TextModel</c>: embeddings scaled by √hidden (the factor rounded to the compute dtype, as
/// transformers does), the layers, a (1 + weight) final norm; Gemma 3's sliding layers rotate with their own base
/// (<c>rope_local_base_freq</c>, no scaling), its global layers with <c>rope_theta</c> and <c>rope_scaling</c>.
/// </summary>
internal sealed class GemmaBackbone : DecoderBackbone
{
#pragma warning disable IDE1006 // Hugging Face names
    private Embedding embed_tokens;
    private ModuleList<GemmaDecoderLayer> layers;
    private RmsNorm norm;
#pragma warning restore IDE1006
    private readonly DecoderBlock[] _layers;
    private readonly RotaryEmbedding[] _ropes; // per layer
    private readonly double _scale;

    public GemmaBackbone(string name, DecoderConfig c, ScalarType dtype) : base(name)
    {
        embed_tokens = nn.Embedding(c.VocabSize, c.HiddenSize, dtype: dtype);
        var blocks = Enumerable.Range(0, c.NumHiddenLayers).Select(i => new GemmaDecoderLayer($"{i}", c, dtype)).ToArray();
        _layers = blocks;
        layers = new ModuleList<GemmaDecoderLayer>(blocks);
        norm = new RmsNorm("norm", c.HiddenSize, c.RmsNormEps, dtype, unitOffset: true);
        var global = new RotaryEmbedding(c);
        RotaryEmbedding local = c.RopeLocalBaseFreq is { } localBase ? new RotaryEmbedding(c with { RopeTheta = localBase, RopeScaling = null }) : global;
        _ropes = Enumerable.Range(0, c.NumHiddenLayers).Select(i => c.WindowOf(i) is null ? global : local).ToArray();
        _scale = Math.Sqrt(c.HiddenSize);
        RegisterComponents();
    }

    public override Embedding Embeddings => embed_tokens;

    public override IReadOnlyList<DecoderBlock> Layers => _layers;

    public override nn.Module<Tensor, Tensor> Norm => norm;

    public override string LayerPrefix => "model.layers.";

    public override RotaryEmbedding? RopeOf(int layer) => _ropes[layer];

    public override Tensor Embed(Tensor inputIds, Tensor positionIds, ScalarType? compute)
    {
        Tensor embedded = base.Embed(inputIds, positionIds, compute);
        using Tensor factor = tensor(_scale, embedded.dtype, embedded.device); // √hidden rounded to the compute dtype
        return embedded.mul(factor);
    }
}
