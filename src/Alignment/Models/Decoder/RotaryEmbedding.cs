using static TorchSharp.torch;

namespace Alignment.Models.Decoder;

/// <summary>Rotary position embeddings, with the inverse frequencies computed as transformers computes them.</summary>
internal sealed class RotaryEmbedding
{
    private readonly Tensor _inverseFrequencies; // [hd/2] float32, CPU
    private readonly Dictionary<string, Tensor> _perDevice = new();

    public RotaryEmbedding(DecoderConfig config)
    {
        using var scope = NewDisposeScope();
        int dim = config.HeadDim;
        Tensor exponents = arange(0, dim, 2, dtype: ScalarType.Int64).to_type(ScalarType.Float32).div(dim);
        Tensor inverse = pow(tensor((float)config.RopeTheta), exponents).reciprocal();
        if (config.RopeScaling is { } scaling)
            inverse = Scale(inverse, scaling);
        _inverseFrequencies = inverse.MoveToOuterDisposeScope().DetachFromDisposeScope();
    }

    /// <summary>cos and sin [B, 1, T, hd] for positions [B, T], in <paramref name="dtype"/>.</summary>
    public (Tensor Cos, Tensor Sin) Angles(Tensor positions, ScalarType dtype)
    {
        string key = positions.device.ToString();
        if (!_perDevice.TryGetValue(key, out Tensor? inverse))
            _perDevice[key] = inverse = _inverseFrequencies.to(positions.device).DetachFromDisposeScope();
        Tensor frequencies = positions.to_type(ScalarType.Float32).unsqueeze(-1).mul(inverse); // [B, T, hd/2]
        Tensor angles = cat([frequencies, frequencies], -1).unsqueeze(1);                        // [B, 1, T, hd]
        return (angles.cos().to_type(dtype), angles.sin().to_type(dtype));
    }

    /// <summary>x·cos + rotate_half(x)·sin, rotate_half(x) = [−x₂, x₁].</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        long half = x.shape[^1] / 2;
        Tensor rotated = cat([x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)], -1);
        return x.mul(cos).add(rotated.mul(sin));
    }

    static Tensor Scale(Tensor inverse, RopeScaling scaling)
    {
        if (scaling.Type == "linear")
            return inverse.div(scaling.Factor);
        // Llama 3: long wavelengths slowed by the factor, short ones kept, the band between interpolated.
        double lowWavelength = scaling.OriginalMaxPositionEmbeddings / scaling.LowFreqFactor;
        double highWavelength = scaling.OriginalMaxPositionEmbeddings / scaling.HighFreqFactor;
        Tensor wavelength = inverse.reciprocal().mul(2 * Math.PI);
        Tensor scaled = inverse.div(scaling.Factor).where(wavelength.gt(lowWavelength), inverse);
        Tensor smooth = wavelength.reciprocal().mul(scaling.OriginalMaxPositionEmbeddings).sub(scaling.LowFreqFactor)
            .div(scaling.HighFreqFactor - scaling.LowFreqFactor);
        Tensor smoothed = smooth.neg().add(1).mul(scaled).div(scaling.Factor).add(smooth.mul(scaled));
        Tensor medium = wavelength.lt(highWavelength).logical_not().logical_and(wavelength.gt(lowWavelength).logical_not());
        return smoothed.where(medium, scaled);
    }
}
