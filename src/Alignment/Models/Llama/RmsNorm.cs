using Alignment.Models.Decoder;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Alignment.Models.Llama;

/// <summary>Root-mean-square layer norm, computed in float32 and cast back before the weight, as transformers does.</summary>
internal sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private Parameter weight;
    private readonly double _eps;

    public RmsNorm(string name, long size, double eps, ScalarType dtype) : base(name)
    {
        weight = new Parameter(ones(size, dtype));
        _eps = eps;
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        ScalarType dtype = input.dtype;
        Tensor x = input.to_type(ScalarType.Float32);
        Tensor variance = x.square().mean([-1], keepdim: true);
        Tensor normed = x.mul(variance.add(_eps).rsqrt()).to_type(dtype);
        return weight.As(normed).mul(normed).MoveToOuterDisposeScope();
    }
}
