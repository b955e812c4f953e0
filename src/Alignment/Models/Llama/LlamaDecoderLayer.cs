using Alignment.Models.Decoder;
using static TorchSharp.torch;

namespace Alignment.Models.Llama;

/// <summary>One pre-norm decoder block.</summary>
internal sealed class LlamaDecoderLayer : DecoderBlock
{
    private LlamaAttention self_attn;
    private LlamaMlp mlp;
    private RmsNorm input_layernorm, post_attention_layernorm;

    public LlamaDecoderLayer(string name, DecoderConfig c, ScalarType dtype) : base(name)
    {
        self_attn = new LlamaAttention("self_attn", c, dtype);
        mlp = new LlamaMlp("mlp", c, dtype);
        input_layernorm = new RmsNorm("input_layernorm", c.HiddenSize, c.RmsNormEps, dtype);
        post_attention_layernorm = new RmsNorm("post_attention_layernorm", c.HiddenSize, c.RmsNormEps, dtype);
        RegisterComponents();
    }

    public override Tensor Forward(Tensor hidden, Tensor cos, Tensor sin, Tensor mask, KvCache.Layer? cache)
    {
        Tensor attended = hidden.add(self_attn.Forward(input_layernorm.call(hidden), cos, sin, mask, cache));
        return attended.add(mlp.call(post_attention_layernorm.call(attended)));
    }

    public override IEnumerable<(string Name, Projection Projection)> Projections =>
        self_attn.Projections.Select(p => ("self_attn." + p.Name, p.Projection))
            .Concat(mlp.Projections.Select(p => ("mlp." + p.Name, p.Projection)));
}
