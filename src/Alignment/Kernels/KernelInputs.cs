using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Kernels;

/// <summary>Shape, dtype and device checks of the kernels' inputs, with messages that name the tensor and its layout.</summary>
internal static class KernelInputs
{
    /// <summary>Checks [B, T, V] floating-point logits and returns their sizes.</summary>
    internal static (long Batch, long Time, long Vocab) RequireLogits(Tensor logits)
    {
        ArgumentNullException.ThrowIfNull(logits);
        RequireRank(logits, 3, nameof(logits), "[B, T, V]");
        RequireFloating(logits, nameof(logits));
        return (logits.shape[0], logits.shape[1], logits.shape[2]);
    }

    /// <summary>Checks [B, T, H] hidden states against a [V, H] lm_head weight of the same dtype and device.</summary>
    internal static (long Batch, long Time, long Width, long Vocab) RequireHiddenAndHead(Tensor hidden, Tensor lmHeadWeight)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        ArgumentNullException.ThrowIfNull(lmHeadWeight);
        RequireRank(hidden, 3, nameof(hidden), "[B, T, H]");
        RequireRank(lmHeadWeight, 2, nameof(lmHeadWeight), "[V, H]");
        RequireFloating(hidden, nameof(hidden));
        long width = hidden.shape[2];
        if (lmHeadWeight.shape[1] != width)
            throw new ArgumentException(
                $"lmHeadWeight has shape {Shape(lmHeadWeight)}; expected [V, {width}] to match hidden's last dimension.", nameof(lmHeadWeight));
        if (lmHeadWeight.dtype != hidden.dtype)
            throw new ArgumentException($"lmHeadWeight is {lmHeadWeight.dtype} but hidden is {hidden.dtype}; they must match.", nameof(lmHeadWeight));
        if (!SameDevice(lmHeadWeight.device, hidden.device))
            throw new ArgumentException($"lmHeadWeight is on {lmHeadWeight.device} but hidden is on {hidden.device}.", nameof(lmHeadWeight));
        return (hidden.shape[0], hidden.shape[1], width, lmHeadWeight.shape[0]);
    }

    internal static void RequireRank(Tensor tensor, int rank, string name, string layout)
    {
        if (tensor.dim() != rank)
            throw new ArgumentException($"{name} has shape {Shape(tensor)}; expected {layout}.", name);
    }

    internal static void RequireFloating(Tensor tensor, string name)
    {
        if (!torch.is_floating_point(tensor))
            throw new ArgumentException($"{name} must be a floating-point tensor, not {tensor.dtype}.", name);
    }

    internal static void RequireSameShape(Tensor tokenLogProbs, Tensor mask)
    {
        ArgumentNullException.ThrowIfNull(tokenLogProbs);
        ArgumentNullException.ThrowIfNull(mask);
        RequireRank(tokenLogProbs, 2, nameof(tokenLogProbs), "[B, T]");
        if (!mask.shape.SequenceEqual(tokenLogProbs.shape))
            throw new ArgumentException($"mask has shape {Shape(mask)}; expected {Shape(tokenLogProbs)}.", nameof(mask));
    }

    internal static bool SameDevice(Device a, Device b) => a.type == b.type && a.index == b.index;

    internal static bool IsInteger(ScalarType dtype) =>
        dtype is ScalarType.Int64 or ScalarType.Int32 or ScalarType.Int16 or ScalarType.Int8 or ScalarType.Byte;

    internal static string Shape(Tensor tensor) => "[" + string.Join(", ", tensor.shape) + "]";
}
