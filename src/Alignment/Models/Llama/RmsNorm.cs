using Alignment.Models.Decoder;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Alignment.Models.Llama;

/// <summary>
/// Root-mean-square layer norm, computed in float32 and cast back before the weight, as transformers does; Gemma's
/// (<c>unitOffset</c>) scales by (1 + weight) in float32 and casts back after it.
/// </summary>
internal sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private Parameter weight;
    private readonly double _eps;
    private readonly bool _unitOffset;

    public RmsNorm(string name, long size, double eps, ScalarType dtype, bool unitOffset = false) : base(name)
    {
        weight = new Parameter(unitOffset ? zeros(size, dtype) : ones(size, dtype));
        _eps = eps;
        _unitOffset = unitOffset;
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        ScalarType dtype = input.dtype;
        Tensor x = input.to_type(ScalarType.Float32);
        Tensor variance = x.square().mean([-1], keepdim: true);
        if (_unitOffset)
            return x.mul(variance.add(_eps).rsqrt()).mul(weight.to_type(ScalarType.Float32).add(1)).to_type(dtype).MoveToOuterDisposeScope();
        Tensor normed = x.mul(variance.add(_eps).rsqrt()).to_type(dtype);
        return weight.As(normed).mul(normed).MoveToOuterDisposeScope();
    }
}
