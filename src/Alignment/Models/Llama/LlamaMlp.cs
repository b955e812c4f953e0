using Alignment.Models.Decoder;
using static TorchSharp.torch;

namespace Alignment.Models.Llama;

/// <summary>Gated feed-forward block: <c>down(act(gate(x)) · up(x))</c> — SwiGLU with silu, Gemma's GeGLU with GELU.</summary>
internal sealed class LlamaMlp : nn.Module<Tensor, Tensor>
{
    private Projection? gate_proj, up_proj, gate_up_proj; // separate, or Phi-3's fused [gate; up]
    private Projection down_proj;
    private readonly string _activation;

    public LlamaMlp(string name, DecoderConfig c, ScalarType dtype) : base(name)
    {
        if (c.FusedProjections)
            gate_up_proj = new Projection("gate_up_proj", c.HiddenSize, 2L * c.IntermediateSize, c.MlpBias, dtype);
        else
        {
            gate_proj = new Projection("gate_proj", c.HiddenSize, c.IntermediateSize, c.MlpBias, dtype);
            up_proj = new Projection("up_proj", c.HiddenSize, c.IntermediateSize, c.MlpBias, dtype);
        }
        down_proj = new Projection("down_proj", c.IntermediateSize, c.HiddenSize, c.MlpBias, dtype);
        _activation = c.HiddenAct;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        if (gate_up_proj is null)
            return down_proj.call(Activations.Apply(gate_proj!.call(x), _activation).mul(up_proj!.call(x)));
        Tensor[] halves = gate_up_proj.call(x).chunk(2, -1); // gate first, up second
        return down_proj.call(Activations.Apply(halves[0], _activation).mul(halves[1]));
    }

    public IEnumerable<(string Name, Projection Projection)> Projections => gate_up_proj is not null
        ? [("gate_up_proj", gate_up_proj), ("down_proj", down_proj)]
        : [("gate_proj", gate_proj!), ("up_proj", up_proj!), ("down_proj", down_proj)];
}
