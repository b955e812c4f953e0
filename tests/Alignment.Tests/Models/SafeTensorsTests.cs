using System.Buffers.Binary;
using System.Text;
using Alignment.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Tests.Models;

public sealed class SafeTensorsTests : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("alignment-st-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>A file assembled byte by byte from the format's description, independent of the writer.</summary>
    string HandMade(string header, byte[] data)
    {
        string path = Path.Combine(_folder, "hand.safetensors");
        byte[] json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + json.Length);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void Reads_a_hand_made_file_in_every_float_dtype()
    {
        byte[] data = new byte[8 + 4 + 4];
        BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(0), 1.5f);
        BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(4), -2f);
        BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(8), 0x3FC0);  // bf16 1.5
        BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(10), 0xC000); // bf16 -2
        BinaryPrimitives.WriteHalfLittleEndian(data.AsSpan(12), (Half)0.25f);
        BinaryPrimitives.WriteHalfLittleEndian(data.AsSpan(14), (Half)(-8f));
        string path = HandMade("""
            {"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[1,2],"data_offsets":[8,12]},
             "c":{"dtype":"F16","shape":[2],"data_offsets":[12,16]},"__metadata__":{"format":"pt"}}
            """, data);

        using var file = SafeTensorsFile.Open(path);
        using Tensor a = file.Read("a"), b = file.Read("b"), c = file.Read("c");
        Assert.Equal(new[] { 1.5f, -2f }, a.data<float>().ToArray());
        Assert.Equal(ScalarType.BFloat16, b.dtype);
        Assert.Equal(new long[] { 1, 2 }, b.shape);
        Assert.Equal(new[] { 1.5f, -2f }, b.to_type(ScalarType.Float32).data<float>().ToArray());
        Assert.Equal(new[] { 0.25f, -8f }, c.to_type(ScalarType.Float32).data<float>().ToArray());
        Assert.Equal("pt", file.Metadata["format"]);
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.Int64)]
    public void Written_files_read_back_bit_identically_with_an_aligned_data_section(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(3);
        Tensor x = randn(3, 5).mul(100).to_type(dtype);
        Tensor y = randn(7).to_type(dtype);
        string path = Path.Combine(_folder, "w.safetensors");
        SafeTensors.Save(path, [new("x", x), new("y.weight", y)]);

        byte[] bytes = File.ReadAllBytes(path);
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(bytes) % 8);
        using var file = SafeTensorsFile.Open(path);
        Assert.Equal(x.bytes.ToArray(), file.Read("x").bytes.ToArray());
        Assert.Equal(y.bytes.ToArray(), file.Read("y.weight").bytes.ToArray());
    }

    [Theory]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,12]}}""", "'a'")]
    [InlineData("""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", "needs 12")]
    [InlineData("""{"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}""", "F8_E4M3")]
    [InlineData("""{"a": not json""", "not valid JSON")]
    [InlineData("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}""", "share bytes")]
    public void Malformed_headers_name_the_file_and_the_problem(string header, string expected)
    {
        string path = HandMade(header, new byte[8]);
        var error = Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Open(path));
        Assert.Contains(path, error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void A_truncated_file_is_rejected()
    {
        string path = Path.Combine(_folder, "short.safetensors");
        File.WriteAllBytes(path, [200, 0, 0, 0, 0, 0, 0, 0, (byte)'{']);
        Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Open(path));
    }
}
