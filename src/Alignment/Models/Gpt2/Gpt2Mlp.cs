using Alignment.Models.Decoder;
using static TorchSharp.torch;

namespace Alignment.Models.Gpt2;

/// <summary>GPT-2's feed-forward block: <c>c_proj(act(c_fc(x)))</c>, both projections Conv1D with biases.</summary>
internal sealed class Gpt2Mlp : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // Hugging Face names
    private Projection c_fc, c_proj;
#pragma warning restore IDE1006
    private readonly string _activation;

    public Gpt2Mlp(string name, DecoderConfig c, ScalarType dtype) : base(name)
    {
        c_fc = new Projection("c_fc", c.HiddenSize, c.IntermediateSize, hasBias: true, dtype, fanInFanOut: true);
        c_proj = new Projection("c_proj", c.IntermediateSize, c.HiddenSize, hasBias: true, dtype, fanInFanOut: true);
        _activation = c.HiddenAct;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => c_proj.call(Activations.Apply(c_fc.call(x), _activation));

    public IEnumerable<(string Name, Projection Projection)> Projections => [("c_fc", c_fc), ("c_proj", c_proj)];
}
