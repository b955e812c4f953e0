using System.Text;

namespace Alignment.Export;

/// <summary>ggml's tensor types that this library writes (their numbers in the GGUF file).</summary>
internal enum GgmlType : uint
{
    F32 = 0,
    F16 = 1,
    Q8_0 = 8,
    BF16 = 30,
}

/// <summary>
/// Writes a GGUF v3 file: the header, typed metadata, tensor infos and the tensor data, each tensor aligned to
/// <c>general.alignment</c> (32). Tensors are produced one at a time while the data is written, so the file never needs
/// the whole model in memory. The file is written under a temporary name beside the target and renamed when complete.
/// </summary>
internal sealed class GgufWriter
{
    const uint Magic = 0x46554747; // "GGUF"
    const uint Version = 3;
    public const int Alignment = 32;

    enum ValueType : uint { UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7, String = 8, Array = 9, UInt64 = 10, Int64 = 11, Float64 = 12 }

    readonly List<(string Key, Action<BinaryWriter> Write)> _metadata = [];
    readonly List<TensorInfo> _tensors = [];

    /// <summary>A tensor to write: its GGUF name, its dimensions in ggml order (ne[0] the innermost), its type, and its bytes when asked.</summary>
    sealed record TensorInfo(string Name, long[] Dimensions, GgmlType Type, long ByteCount, Action<Stream> Write);

    public IReadOnlyList<string> Keys => _metadata.Select(m => m.Key).ToList();

    public void Add(string key, string value) => Put(key, w => { w.Write((uint)ValueType.String); WriteString(w, value); });
    public void Add(string key, uint value) => Put(key, w => { w.Write((uint)ValueType.UInt32); w.Write(value); });
    public void Add(string key, int value) => Put(key, w => { w.Write((uint)ValueType.Int32); w.Write(value); });
    public void Add(string key, float value) => Put(key, w => { w.Write((uint)ValueType.Float32); w.Write(value); });
    public void Add(string key, bool value) => Put(key, w => { w.Write((uint)ValueType.Bool); w.Write((byte)(value ? 1 : 0)); });

    public void Add(string key, IReadOnlyList<string> values) => Put(key, w =>
    {
        WriteArrayHeader(w, ValueType.String, values.Count);
        foreach (string value in values)
            WriteString(w, value);
    });

    public void Add(string key, IReadOnlyList<int> values) => Put(key, w =>
    {
        WriteArrayHeader(w, ValueType.Int32, values.Count);
        foreach (int value in values)
            w.Write(value);
    });

    public void Add(string key, IReadOnlyList<float> values) => Put(key, w =>
    {
        WriteArrayHeader(w, ValueType.Float32, values.Count);
        foreach (float value in values)
            w.Write(value);
    });

    /// <summary>Adds a tensor whose bytes <paramref name="write"/> writes to the file when the data section is written.</summary>
    /// <param name="name">The GGUF name (<c>blk.0.attn_q.weight</c>).</param>
    /// <param name="torchShape">The shape in PyTorch's order (outermost first); written reversed, as ggml counts.</param>
    /// <param name="type">The stored type.</param>
    /// <param name="write">Writes the tensor's bytes in that type, exactly <see cref="ByteCount"/> of them.</param>
    public void AddTensor(string name, long[] torchShape, GgmlType type, Action<Stream> write)
    {
        if (_tensors.Any(t => t.Name == name))
            throw new ArgumentException($"The tensor '{name}' is added twice.", nameof(name));
        _tensors.Add(new TensorInfo(name, [.. torchShape.Reverse()], type, ByteCount(torchShape, type), write));
    }

    /// <summary>Bytes of a tensor of <paramref name="torchShape"/> stored as <paramref name="type"/>.</summary>
    public static long ByteCount(long[] torchShape, GgmlType type)
    {
        long elements = torchShape.Aggregate(1L, (a, b) => a * b);
        return type switch
        {
            GgmlType.F32 => elements * 4,
            GgmlType.F16 or GgmlType.BF16 => elements * 2,
            GgmlType.Q8_0 => elements / 32 * 34,
            _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
        };
    }

    /// <summary>Writes the file: under a temporary name in the target's folder, renamed to <paramref name="path"/> once complete.</summary>
    /// <exception cref="InvalidOperationException">A tensor produced a different number of bytes than its shape and type make.</exception>
    public void Write(string path)
    {
        string full = Path.GetFullPath(path);
        string temporary = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Environment.ProcessId}.partial");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            using (var writer = new BinaryWriter(stream, Encoding.UTF8))
            {
                writer.Write(Magic);
                writer.Write(Version);
                writer.Write((ulong)_tensors.Count);
                writer.Write((ulong)_metadata.Count);
                foreach (var (key, write) in _metadata)
                {
                    WriteString(writer, key);
                    write(writer);
                }
                long offset = 0;
                foreach (TensorInfo tensor in _tensors)
                {
                    WriteString(writer, tensor.Name);
                    writer.Write((uint)tensor.Dimensions.Length);
                    foreach (long dimension in tensor.Dimensions)
                        writer.Write((ulong)dimension);
                    writer.Write((uint)tensor.Type);
                    writer.Write((ulong)offset);
                    offset += Padded(tensor.ByteCount);
                }
                Pad(writer);
                foreach (TensorInfo tensor in _tensors)
                {
                    writer.Flush();
                    long start = stream.Position;
                    tensor.Write(stream);
                    if (stream.Position - start != tensor.ByteCount)
                        throw new InvalidOperationException($"The tensor '{tensor.Name}' produced {stream.Position - start} bytes; its shape and type {tensor.Type} make {tensor.ByteCount}.");
                    Pad(writer);
                }
            }
            File.Move(temporary, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary))
                File.Delete(temporary);
        }
    }

    void Put(string key, Action<BinaryWriter> write)
    {
        if (_metadata.Any(m => m.Key == key))
            throw new ArgumentException($"The metadata key '{key}' is added twice.", nameof(key));
        _metadata.Add((key, write));
    }

    static long Padded(long bytes) => (bytes + Alignment - 1) / Alignment * Alignment;

    static void Pad(BinaryWriter writer)
    {
        long position = writer.BaseStream.Position;
        for (long i = position; i < Padded(position); i++)
            writer.Write((byte)0);
    }

    static void WriteArrayHeader(BinaryWriter writer, ValueType type, int count)
    {
        writer.Write((uint)ValueType.Array);
        writer.Write((uint)type);
        writer.Write((ulong)count);
    }

    static void WriteString(BinaryWriter writer, string value)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(value);
        writer.Write((ulong)bytes.Length);
        writer.Write(bytes);
    }
}
