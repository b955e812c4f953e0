using Alignment.Models.Decoder;
using static TorchSharp.torch;

namespace Alignment.Models.Llama;

/// <summary>Gated feed-forward block: <c>down(act(gate(x)) · up(x))</c> — SwiGLU with silu, Gemma's GeGLU with GELU.</summary>
internal sealed class LlamaMlp : nn.Module<Tensor, Tensor>
{
    private Projection gate_proj, up_proj, down_proj;
    private readonly string _activation;

    public LlamaMlp(string name, DecoderConfig c, ScalarType dtype) : base(name)
    {
        gate_proj = new Projection("gate_proj", c.HiddenSize, c.IntermediateSize, c.MlpBias, dtype);
        up_proj = new Projection("up_proj", c.HiddenSize, c.IntermediateSize, c.MlpBias, dtype);
        down_proj = new Projection("down_proj", c.IntermediateSize, c.HiddenSize, c.MlpBias, dtype);
        _activation = c.HiddenAct;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => down_proj.call(Activations.Apply(gate_proj.call(x), _activation).mul(up_proj.call(x)));

    public IEnumerable<(string Name, Projection Projection)> Projections =>
        [("gate_proj", gate_proj), ("up_proj", up_proj), ("down_proj", down_proj)];
}
