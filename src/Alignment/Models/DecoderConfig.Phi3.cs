using System.Text.Json.Nodes;

namespace Alignment.Models;

public sealed partial record DecoderConfig
{
    /// <summary><c>partial_rotary_factor</c>: the share of each head's dimensions that rotate (the first ones); 1 by default.</summary>
    public double PartialRotaryFactor { get; init; } = 1;

    /// <summary>Phi-3: q/k/v in one <c>qkv_proj</c> and gate/up in one <c>gate_up_proj</c>.</summary>
    internal bool FusedProjections => ModelType == "phi3";

    /// <summary>The rotated dimensions of a head: ⌊head_dim · partial_rotary_factor⌋.</summary>
    internal int RotaryDim => (int)(HeadDim * PartialRotaryFactor);

    /// <summary>
    /// Phi-3's fields on top of the Llama-style ones: <c>partial_rotary_factor</c>, and for <c>longrope</c> the
    /// config-level <c>original_max_position_embeddings</c>, from which transformers takes the factor
    /// (max_position_embeddings / original) — each factor list must hold one entry per rotary frequency.
    /// </summary>
    static DecoderConfig Phi3(DecoderConfig llama, JsonObject root)
    {
        double partial = OptionalPositiveDouble(root, "partial_rotary_factor") ?? 1;
        if (partial > 1)
            throw new InvalidDataException($"\"partial_rotary_factor\" must be in (0, 1]; found {partial}.");
        var config = llama with { PartialRotaryFactor = partial };
        if (config.RotaryDim % 2 != 0 || config.RotaryDim == 0)
            throw new InvalidDataException($"head_dim {config.HeadDim} × partial_rotary_factor {partial} must give an even number of rotary dimensions.");
        if (config.RopeScaling is not { Type: "longrope" } scaling)
            return config;
        int original = OptionalPositiveInt(root, "original_max_position_embeddings") ?? config.MaxPositionEmbeddings;
        int half = config.RotaryDim / 2;
        foreach (var (name, factors) in new[] { ("short_factor", scaling.ShortFactor!), ("long_factor", scaling.LongFactor!) })
            if (factors.Count != half)
                throw new InvalidDataException($"rope_scaling \"{name}\" has {factors.Count} entries; the model's {config.RotaryDim} rotary dimensions need {half}.");
        return config with
        {
            RopeScaling = scaling with { Factor = (double)config.MaxPositionEmbeddings / original, OriginalMaxPositionEmbeddings = original },
        };
    }
}
