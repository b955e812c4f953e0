using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Alignment.Models.Decoder;

/// <summary>The MLP activations transformers names in config.json.</summary>
internal static class Activations
{
    /// <summary>
    /// <c>silu</c>; <c>gelu</c> (exact, erf); <c>gelu_new</c> and <c>gelu_pytorch_tanh</c>, both GELU's tanh
    /// approximation 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
    /// </summary>
    public static Tensor Apply(Tensor x, string name) => name switch
    {
        "silu" => F.silu(x),
        "gelu" => F.gelu(x),
        "gelu_new" or "gelu_pytorch_tanh" => x.gelu(TorchSharp.Modules.GELU.Approximate.tanh),
        _ => throw new ArgumentException($"Unknown activation '{name}'.", nameof(name)),
    };
}
