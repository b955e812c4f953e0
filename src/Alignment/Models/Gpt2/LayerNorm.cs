using Alignment.Models.Decoder;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Alignment.Models.Gpt2;

/// <summary>Layer norm with a weight and a bias (<c>nn.LayerNorm</c>), its parameters used in the input's dtype.</summary>
internal sealed class LayerNorm : nn.Module<Tensor, Tensor>
{
    private Parameter weight, bias;
    private readonly long _size;
    private readonly double _eps;

    public LayerNorm(string name, long size, double eps, ScalarType dtype) : base(name)
    {
        weight = new Parameter(ones(size, dtype));
        bias = new Parameter(zeros(size, dtype));
        (_size, _eps) = (size, eps);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input) => F.layer_norm(input, [_size], weight.As(input), bias.As(input), _eps);
}
