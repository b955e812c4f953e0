using System.Buffers.Binary;

namespace Alignment.Export;

/// <summary>float32 values to the bytes of ggml's F32, F16, BF16 and Q8_0 (little-endian, as GGUF stores them).</summary>
internal static class GgmlQuantization
{
    /// <summary>Encodes <paramref name="values"/> (row-major, the last dimension innermost) as <paramref name="type"/>.</summary>
    public static byte[] Encode(ReadOnlySpan<float> values, GgmlType type) => type switch
    {
        GgmlType.F32 => F32(values),
        GgmlType.F16 => F16(values),
        GgmlType.BF16 => Bf16(values),
        GgmlType.Q8_0 => Q8_0(values),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    static byte[] F32(ReadOnlySpan<float> values)
    {
        var bytes = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++)
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), values[i]);
        return bytes;
    }

    /// <summary>IEEE half precision, rounded to nearest even (numpy's <c>astype(float16)</c>).</summary>
    static byte[] F16(ReadOnlySpan<float> values)
    {
        var bytes = new byte[values.Length * 2];
        for (int i = 0; i < values.Length; i++)
            BinaryPrimitives.WriteHalfLittleEndian(bytes.AsSpan(2 * i), (Half)values[i]);
        return bytes;
    }

    /// <summary>bfloat16: the upper 16 bits of the float32, rounded to nearest even; NaN kept quiet (gguf-py's rule).</summary>
    static byte[] Bf16(ReadOnlySpan<float> values)
    {
        var bytes = new byte[values.Length * 2];
        for (int i = 0; i < values.Length; i++)
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2 * i), ToBf16(values[i]));
        return bytes;
    }

    public static ushort ToBf16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if ((bits & 0x7fffffff) > 0x7f800000) // NaN: keep it a (quiet) NaN
            return (ushort)((bits >> 16) | 64);
        return (ushort)((bits + (0x7fff + ((bits >> 16) & 1))) >> 16);
    }

    /// <summary>
    /// Q8_0: blocks of 32 values, each stored as its scale d = max|x| / 127 (float16) and 32 int8s round(x / d) (half away
    /// from zero; 0 where d = 0). The count must be a multiple of 32.
    /// </summary>
    static byte[] Q8_0(ReadOnlySpan<float> values)
    {
        if (values.Length % 32 != 0)
            throw new ArgumentException($"Q8_0 needs a multiple of 32 values, got {values.Length}.", nameof(values));
        var bytes = new byte[values.Length / 32 * 34];
        for (int block = 0; block < values.Length / 32; block++)
        {
            ReadOnlySpan<float> x = values.Slice(32 * block, 32);
            float amax = 0;
            foreach (float v in x)
                amax = Math.Max(amax, Math.Abs(v));
            float d = amax / 127;
            Span<byte> output = bytes.AsSpan(34 * block, 34);
            BinaryPrimitives.WriteHalfLittleEndian(output, (Half)d);
            for (int j = 0; j < 32; j++)
                output[2 + j] = d == 0 ? (byte)0 : unchecked((byte)(sbyte)MathF.Round(x[j] / d, MidpointRounding.AwayFromZero));
        }
        return bytes;
    }
}
