using static TorchSharp.torch;

namespace Alignment.Models.Decoder;

/// <summary>Autocast's one rule: a weight meets the activations in their dtype.</summary>
internal static class DTypeCasts
{
    /// <summary><paramref name="weight"/> itself when it already has <paramref name="like"/>'s dtype, else a (differentiable) cast copy.</summary>
    public static Tensor As(this Tensor weight, Tensor like) => weight.As(like.dtype);

    /// <summary><paramref name="weight"/> itself when it already has <paramref name="dtype"/>, else a (differentiable) cast copy.</summary>
    public static Tensor As(this Tensor weight, ScalarType dtype) => weight.dtype == dtype ? weight : weight.to_type(dtype);
}
