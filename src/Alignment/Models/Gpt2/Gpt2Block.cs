using Alignment.Models.Decoder;
using static TorchSharp.torch;

namespace Alignment.Models.Gpt2;

/// <summary>GPT-2's pre-norm block: <c>x + attn(ln_1(x))</c>, then <c>+ mlp(ln_2(·))</c>.</summary>
internal sealed class Gpt2Block : DecoderBlock
{
#pragma warning disable IDE1006 // Hugging Face names
    private LayerNorm ln_1, ln_2;
    private Gpt2Attention attn;
    private Gpt2Mlp mlp;
#pragma warning restore IDE1006

    public Gpt2Block(string name, DecoderConfig c, int layerIndex, ScalarType dtype) : base(name)
    {
        ln_1 = new LayerNorm("ln_1", c.HiddenSize, c.RmsNormEps, dtype);
        attn = new Gpt2Attention("attn", c, layerIndex, dtype);
        ln_2 = new LayerNorm("ln_2", c.HiddenSize, c.RmsNormEps, dtype);
        mlp = new Gpt2Mlp("mlp", c, dtype);
        RegisterComponents();
    }

    public override Tensor Forward(Tensor hidden, Tensor cos, Tensor sin, Tensor mask, KvCache.Layer? cache)
    {
        Tensor attended = hidden.add(attn.Forward(ln_1.call(hidden), mask, cache));
        return attended.add(mlp.call(ln_2.call(attended)));
    }

    public override IEnumerable<(string Name, Projection Projection)> Projections =>
        attn.Projections.Select(p => ("attn." + p.Name, p.Projection))
            .Concat(mlp.Projections.Select(p => ("mlp." + p.Name, p.Projection)));
}
