using static TorchSharp.torch;

namespace Alignment.Models.Decoder;

/// <summary>
/// Rotary position embeddings, with the inverse frequencies computed as transformers computes them: plain, linear,
/// Llama 3 and Phi-3's longrope scaling, over the first ⌊head_dim · partial_rotary_factor⌋ dimensions of each head.
/// </summary>
internal sealed class RotaryEmbedding
{
    private readonly Tensor _inverseFrequencies;      // [rd/2] float32, CPU
    private readonly Tensor? _longInverseFrequencies; // longrope past the original length
    private readonly long _originalLength;
    private readonly double _attentionScale;           // longrope multiplies cos and sin by it
    private readonly Dictionary<(string, bool), Tensor> _perDevice = new();

    public RotaryEmbedding(DecoderConfig config)
    {
        using var scope = NewDisposeScope();
        int dim = config.RotaryDim;
        Tensor exponents = arange(0, dim, 2, dtype: ScalarType.Int64).to_type(ScalarType.Float32).div(dim);
        Tensor powers = pow(tensor((float)config.RopeTheta), exponents);
        Tensor inverse = powers.reciprocal();
        _attentionScale = 1;
        if (config.RopeScaling is { Type: "longrope" } longrope)
        {
            // inv_freq = 1 / (ext_factor · base^(2i/d)): short factors within the original length, long ones past it.
            inverse = powers.mul(tensor(longrope.ShortFactor!.Select(f => (float)f).ToArray())).reciprocal();
            _longInverseFrequencies = powers.mul(tensor(longrope.LongFactor!.Select(f => (float)f).ToArray())).reciprocal()
                .MoveToOuterDisposeScope().DetachFromDisposeScope();
            _originalLength = longrope.OriginalMaxPositionEmbeddings;
            _attentionScale = longrope.AttentionFactor ?? (longrope.Factor <= 1 ? 1
                : Math.Sqrt(1 + Math.Log(longrope.Factor) / Math.Log(longrope.OriginalMaxPositionEmbeddings)));
        }
        else if (config.RopeScaling is { } scaling)
            inverse = Scale(inverse, scaling);
        _inverseFrequencies = inverse.MoveToOuterDisposeScope().DetachFromDisposeScope();
    }

    /// <summary>cos and sin [B, 1, T, rd] for positions [B, T], in <paramref name="dtype"/>.</summary>
    /// <remarks>longrope, as transformers: the long factors when the largest position of this call reaches past the original length.</remarks>
    public (Tensor Cos, Tensor Sin) Angles(Tensor positions, ScalarType dtype)
    {
        bool useLong = _longInverseFrequencies is not null && positions.numel() > 0 && positions.max().item<long>() + 1 > _originalLength;
        var key = (positions.device.ToString(), useLong);
        if (!_perDevice.TryGetValue(key, out Tensor? inverse))
            _perDevice[key] = inverse = (useLong ? _longInverseFrequencies! : _inverseFrequencies).to(positions.device).DetachFromDisposeScope();
        Tensor frequencies = positions.to_type(ScalarType.Float32).unsqueeze(-1).mul(inverse); // [B, T, rd/2]
        Tensor angles = cat([frequencies, frequencies], -1).unsqueeze(1);                        // [B, 1, T, rd]
        Tensor cos = angles.cos(), sin = angles.sin();
        if (_attentionScale != 1)
            (cos, sin) = (cos.mul(_attentionScale), sin.mul(_attentionScale));
        return (cos.to_type(dtype), sin.to_type(dtype));
    }

    /// <summary>
    /// x·cos + rotate_half(x)·sin over the first rd dimensions (rotate_half(x) = [−x₂, x₁]); the rest of each head
    /// passes unchanged (partial rotary).
    /// </summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        long rotary = cos.shape[^1], width = x.shape[^1];
        Tensor rotated = rotary == width ? x : x.narrow(-1, 0, rotary);
        long half = rotary / 2;
        Tensor turned = cat([rotated.narrow(-1, half, half).neg(), rotated.narrow(-1, 0, half)], -1);
        Tensor result = rotated.mul(cos).add(turned.mul(sin));
        return rotary == width ? result : cat([result, x.narrow(-1, rotary, width - rotary)], -1);
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
