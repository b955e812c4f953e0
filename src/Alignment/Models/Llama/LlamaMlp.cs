using Alignment.Models.Decoder;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Alignment.Models.Llama;

/// <summary>SwiGLU feed-forward block: <c>down(silu(gate(x)) · up(x))</c>.</summary>
internal sealed class LlamaMlp : nn.Module<Tensor, Tensor>
{
    private Projection gate_proj, up_proj, down_proj;

    public LlamaMlp(string name, DecoderConfig c, ScalarType dtype) : base(name)
    {
        gate_proj = new Projection("gate_proj", c.HiddenSize, c.IntermediateSize, c.MlpBias, dtype);
        up_proj = new Projection("up_proj", c.HiddenSize, c.IntermediateSize, c.MlpBias, dtype);
        down_proj = new Projection("down_proj", c.IntermediateSize, c.HiddenSize, c.MlpBias, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => down_proj.call(F.silu(gate_proj.call(x)).mul(up_proj.call(x)));

    public IEnumerable<(string Name, Projection Projection)> Projections =>
        [("gate_proj", gate_proj), ("up_proj", up_proj), ("down_proj", down_proj)];
}
