using System.Text.Json.Nodes;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Alignment.Training;

/// <summary>
/// Dynamic loss scaling for float16 compute, with the defaults of PyTorch's <c>GradScaler</c>: the loss is multiplied
/// by the scale (2¹⁶ at first) before backward so that small gradients survive float16, the gradients are divided by it
/// before clipping; a step whose gradients overflowed is skipped and halves the scale, and every 2000 clean updates
/// double it. The scale is part of a checkpoint, so a resumed run scales as the uninterrupted one did.
/// </summary>
internal sealed class LossScaler
{
    const int GrowthInterval = 2000;
    const string ScaleKey = "loss_scale", CleanKey = "loss_scale_clean_updates";
    int _cleanUpdates;

    /// <summary>The current scale.</summary>
    public double Scale { get; private set; } = 65536;

    /// <summary>Divides every gradient by the scale, in place.</summary>
    public void Unscale(IEnumerable<Parameter> parameters)
    {
        using var scope = NewDisposeScope();
        using Scalar inverse = (1 / Scale).ToScalar();
        foreach (Parameter parameter in parameters)
            parameter.grad?.mul_(inverse);
    }

    /// <summary>Records an update: an overflow halves the scale, the 2000th clean update in a row doubles it.</summary>
    public void Update(bool overflowed)
    {
        if (overflowed)
        {
            Scale /= 2;
            _cleanUpdates = 0;
        }
        else if (++_cleanUpdates == GrowthInterval)
        {
            Scale *= 2;
            _cleanUpdates = 0;
        }
    }

    public void Save(JsonObject state)
    {
        state[ScaleKey] = Scale;
        state[CleanKey] = _cleanUpdates;
    }

    public void Restore(JsonObject state)
    {
        Scale = state[ScaleKey]?.GetValue<double>() ?? Scale;
        _cleanUpdates = state[CleanKey]?.GetValue<int>() ?? 0;
    }
}
