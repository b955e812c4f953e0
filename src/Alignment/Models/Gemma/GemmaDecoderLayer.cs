using Alignment.Models.Decoder;
using Alignment.Models.Llama;
using static TorchSharp.torch;

namespace Alignment.Models.Gemma;

/// <summary>
/// Gemma's decoder layer: Llama's attention and gated MLP with (1 + weight) RMSNorms; Gemma 2 and 3 also norm each
/// sub-block's output before the residual (<c>post_attention_layernorm</c>, <c>pre_feedforward_layernorm</c>,
/// <c>post_feedforward_layernorm</c>), Gemma 1 has Llama's two norms.
/// </summary>
internal sealed class GemmaDecoderLayer : DecoderBlock
{
#pragma warning disable IDE1006 // Hugging Face names
    private LlamaAttention self_attn;
    private LlamaMlp mlp;
    private RmsNorm input_layernorm, post_attention_layernorm;
    private RmsNorm? pre_feedforward_layernorm, post_feedforward_layernorm;
#pragma warning restore IDE1006

    public GemmaDecoderLayer(string name, DecoderConfig c, ScalarType dtype) : base(name)
    {
        self_attn = new LlamaAttention("self_attn", c, dtype);
        mlp = new LlamaMlp("mlp", c, dtype);
        RmsNorm Norm(string id) => new(id, c.HiddenSize, c.RmsNormEps, dtype, unitOffset: true);
        input_layernorm = Norm("input_layernorm");
        post_attention_layernorm = Norm("post_attention_layernorm");
        if (c.ModelType != "gemma")
        {
            pre_feedforward_layernorm = Norm("pre_feedforward_layernorm");
            post_feedforward_layernorm = Norm("post_feedforward_layernorm");
        }
        RegisterComponents();
    }

    public override Tensor Forward(Tensor hidden, Tensor cos, Tensor sin, Tensor mask, KvCache.Layer? cache)
    {
        Tensor attention = self_attn.Forward(input_layernorm.call(hidden), cos, sin, mask, cache);
        if (pre_feedforward_layernorm is null) // Gemma 1: post_attention_layernorm is the MLP's input norm, as in Llama
        {
            Tensor attended = hidden.add(attention);
            return attended.add(mlp.call(post_attention_layernorm.call(attended)));
        }
        Tensor residual = hidden.add(post_attention_layernorm.call(attention));
        return residual.add(post_feedforward_layernorm!.call(mlp.call(pre_feedforward_layernorm.call(residual))));
    }

    public override IEnumerable<(string Name, Projection Projection)> Projections =>
        self_attn.Projections.Select(p => ("self_attn." + p.Name, p.Projection))
            .Concat(mlp.Projections.Select(p => ("mlp." + p.Name, p.Projection)));
}
