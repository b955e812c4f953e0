using System.Buffers.Binary;
using Alignment.Export;

namespace Alignment.Tests.Export;

public sealed class GgmlQuantizationTests
{
    [Fact]
    public void Q8_0_stores_a_half_scale_and_rounded_int8s_per_block_of_32()
    {
        // Block 1: 0, 1, …, 31 scaled by 0.1 — max 3.1, d = 3.1/127; x/d = 127·k/31, rounded half away from zero.
        // Block 2: all zero — d = 0 and every q = 0. Block 3: one −2 among zeros — d = 2/127, q = −127.
        float[] values = [.. Enumerable.Range(0, 32).Select(k => 0.1f * k), .. new float[32], .. new float[31], -2f];
        byte[] bytes = GgmlQuantization.Encode(values, GgmlType.Q8_0);
        Assert.Equal(3 * 34, bytes.Length);
        Assert.Equal((Half)(3.1f / 127), BinaryPrimitives.ReadHalfLittleEndian(bytes));
        for (int k = 0; k < 32; k++)
            Assert.Equal((sbyte)Math.Round(0.1f * k / (3.1f / 127), MidpointRounding.AwayFromZero), (sbyte)bytes[2 + k]);
        Assert.All(bytes[34..68], b => Assert.Equal(0, b));
        Assert.Equal((Half)(2f / 127), BinaryPrimitives.ReadHalfLittleEndian(bytes.AsSpan(68)));
        Assert.Equal(-127, (sbyte)bytes[^1]);
        Assert.Throws<ArgumentException>(() => GgmlQuantization.Encode(new float[33], GgmlType.Q8_0));
    }

    [Theory]
    [InlineData(1.0f, 0x3f80)]
    [InlineData(1.00390625f, 0x3f80)]  // 1 + 2⁻⁸: exactly half a bf16 step above 1, ties to the even 0x3f80
    [InlineData(1.01171875f, 0x3f82)]  // 1 + 3·2⁻⁸: half a step above 0x3f81, ties to the even 0x3f82
    [InlineData(-2.0f, 0xc000)]
    public void Bf16_rounds_to_nearest_even(float value, int expected) => Assert.Equal((ushort)expected, GgmlQuantization.ToBf16(value));

    [Fact]
    public void F16_and_f32_are_little_endian_ieee()
    {
        Assert.Equal([0x00, 0x3c, 0x00, 0xc0], GgmlQuantization.Encode([1f, -2f], GgmlType.F16));           // 1 = 0x3c00, −2 = 0xc000
        Assert.Equal([0x00, 0x00, 0x80, 0x3f], GgmlQuantization.Encode([1f], GgmlType.F32));
    }
}
