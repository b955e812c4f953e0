using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace Alignment.Models;

/// <summary>One tensor's entry in a safetensors header.</summary>
/// <param name="Name">The tensor's name, for example <c>model.layers.0.self_attn.q_proj.weight</c>.</param>
/// <param name="DType">The stored dtype.</param>
/// <param name="Shape">The stored shape.</param>
/// <param name="Begin">Offset of the first byte, relative to the start of the data section.</param>
/// <param name="End">Offset one past the last byte, relative to the start of the data section.</param>
internal sealed record SafeTensorEntry(string Name, ScalarType DType, long[] Shape, long Begin, long End);

/// <summary>
/// Reads one <c>.safetensors</c> file (8-byte little-endian header length, a JSON header, then raw little-endian data).
/// Tensors are read one at a time straight into native tensor memory: loading never holds more than the tensor being
/// read in extra memory.
/// </summary>
internal sealed class SafeTensorsFile : IDisposable
{
    const long MaxHeaderBytes = 100L << 20;
    readonly FileStream _stream;
    readonly long _dataStart;

    SafeTensorsFile(string path, FileStream stream, long dataStart, Dictionary<string, SafeTensorEntry> entries, Dictionary<string, string> metadata)
    {
        Path = path;
        _stream = stream;
        _dataStart = dataStart;
        Entries = entries;
        Metadata = metadata;
    }

    /// <summary>The file's path.</summary>
    public string Path { get; }

    /// <summary>Every tensor in the file, by name.</summary>
    public IReadOnlyDictionary<string, SafeTensorEntry> Entries { get; }

    /// <summary>The header's <c>__metadata__</c> strings.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Opens a file and validates its header.</summary>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">The header is malformed; the message names the file and the tensor.</exception>
    public static SafeTensorsFile Open(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"No safetensors file at '{path}'.", path);
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            Span<byte> prefix = stackalloc byte[8];
            if (stream.Read(prefix) != 8)
                throw new InvalidDataException($"'{path}' is too short to be a safetensors file.");
            long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(prefix);
            if (headerLength <= 0 || headerLength > MaxHeaderBytes || 8 + headerLength > stream.Length)
                throw new InvalidDataException($"'{path}' declares a header of {headerLength} bytes, which does not fit the file ({stream.Length} bytes).");
            var header = new byte[headerLength];
            stream.ReadExactly(header);
            long dataStart = 8 + headerLength;
            var (entries, metadata) = ParseHeader(header, path, stream.Length - dataStart);
            return new SafeTensorsFile(path, stream, dataStart, entries, metadata);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>Reads one tensor into a new CPU tensor of its stored dtype and shape.</summary>
    /// <param name="name">The tensor's name.</param>
    /// <exception cref="KeyNotFoundException">The file has no tensor of that name.</exception>
    public Tensor Read(string name)
    {
        if (!Entries.TryGetValue(name, out SafeTensorEntry? entry))
            throw new KeyNotFoundException($"'{Path}' has no tensor named '{name}'.");
        Tensor tensor = empty(entry.Shape, entry.DType);
        try
        {
            _stream.Seek(_dataStart + entry.Begin, SeekOrigin.Begin);
            SafeTensors.ForEachByteBlock(tensor, block => _stream.ReadExactly(block));
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public void Dispose() => _stream.Dispose();

    static (Dictionary<string, SafeTensorEntry>, Dictionary<string, string>) ParseHeader(byte[] header, string path, long dataLength)
    {
        JsonObject root;
        try
        {
            root = JsonNode.Parse(header)?.AsObject() ?? throw new InvalidDataException($"'{path}' has an empty header.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' has a header that is not valid JSON: {e.Message}", e);
        }

        var entries = new Dictionary<string, SafeTensorEntry>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, node) in root)
        {
            if (name == "__metadata__")
            {
                if (node is JsonObject meta)
                    foreach (var (key, value) in meta)
                        metadata[key] = value?.ToString() ?? "";
                continue;
            }
            try
            {
                var obj = node!.AsObject();
                string dtypeName = obj["dtype"]!.GetValue<string>();
                ScalarType dtype = SafeTensors.ToScalarType(dtypeName)
                    ?? throw new InvalidDataException($"dtype '{dtypeName}' is not supported (F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL are)");
                long[] shape = obj["shape"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray();
                var offsets = obj["data_offsets"]!.AsArray();
                long begin = offsets[0]!.GetValue<long>(), end = offsets[1]!.GetValue<long>();
                long expected = shape.Aggregate(1L, (a, b) => a * b) * SafeTensors.ElementSize(dtype);
                if (shape.Any(d => d < 0) || begin < 0 || end < begin || end > dataLength)
                    throw new InvalidDataException($"data_offsets [{begin}, {end}] lie outside the data section of {dataLength} bytes");
                if (end - begin != expected)
                    throw new InvalidDataException($"data_offsets span {end - begin} bytes but {dtypeName} [{string.Join(", ", shape)}] needs {expected}");
                entries[name] = new SafeTensorEntry(name, dtype, shape, begin, end);
            }
            catch (Exception e) when (e is InvalidDataException or InvalidOperationException or NullReferenceException or FormatException)
            {
                throw new InvalidDataException($"'{path}', tensor '{name}': {e.Message}", e);
            }
        }
        SafeTensorEntry? previous = null;
        foreach (SafeTensorEntry entry in entries.Values.Where(e => e.End > e.Begin).OrderBy(e => e.Begin))
        {
            if (previous is not null && entry.Begin < previous.End)
                throw new InvalidDataException($"'{path}': tensors '{previous.Name}' [{previous.Begin}, {previous.End}) and '{entry.Name}' " +
                    $"[{entry.Begin}, {entry.End}) share bytes of the data section; each tensor needs its own.");
            previous = entry;
        }
        return (entries, metadata);
    }
}

/// <summary>Writes safetensors files and maps between safetensors and TorchSharp dtypes.</summary>
internal static class SafeTensors
{
    const int MaxBlockBytes = 1 << 30;

    /// <summary>
    /// Writes tensors to one <c>.safetensors</c> file, in the order given, each as stored (dtype and shape kept). The file
    /// is written to a temporary name and renamed into place, so a crash never leaves a partial file under
    /// <paramref name="path"/>.
    /// </summary>
    /// <param name="path">Destination file.</param>
    /// <param name="tensors">Name → tensor; any device, any layout (copied to contiguous CPU memory one at a time).</param>
    /// <param name="metadata">Optional <c>__metadata__</c> strings; <c>format: pt</c> is added when absent.</param>
    /// <exception cref="ArgumentException">A tensor's dtype has no safetensors equivalent.</exception>
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        var list = tensors.ToList();
        var header = new JsonObject();
        var meta = new JsonObject { ["format"] = "pt" };
        if (metadata is not null)
            foreach (var (key, value) in metadata)
                meta[key] = value;
        header["__metadata__"] = meta;
        long offset = 0;
        foreach (var (name, tensor) in list)
        {
            string dtype = ToSafeTensorsName(tensor.dtype)
                ?? throw new ArgumentException($"Tensor '{name}' has dtype {tensor.dtype}, which safetensors cannot store.", nameof(tensors));
            long bytes = tensor.numel() * ElementSize(tensor.dtype);
            header[name] = new JsonObject
            {
                ["dtype"] = dtype,
                ["shape"] = new JsonArray(tensor.shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + bytes),
            };
            offset += bytes;
        }
        byte[] json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padding = (8 - json.Length % 8) % 8; // the data section starts 8-byte aligned, padded with spaces
        byte[] headerBytes = new byte[json.Length + padding];
        json.CopyTo(headerBytes, 0);
        headerBytes.AsSpan(json.Length).Fill((byte)' ');

        string directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        string temporary = path + ".tmp";
        try
        {
            using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            {
                Span<byte> prefix = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)headerBytes.Length);
                stream.Write(prefix);
                stream.Write(headerBytes);
                foreach (var (_, tensor) in list)
                {
                    using var scope = NewDisposeScope();
                    Tensor cpu = tensor.detach().cpu().contiguous();
                    ForEachByteBlock(cpu, block => stream.Write(block));
                }
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary))
                File.Delete(temporary);
        }
    }

    /// <summary>The TorchSharp dtype of a safetensors dtype name, or null when unsupported.</summary>
    public static ScalarType? ToScalarType(string name) => name switch
    {
        "F64" => ScalarType.Float64,
        "F32" => ScalarType.Float32,
        "F16" => ScalarType.Float16,
        "BF16" => ScalarType.BFloat16,
        "I64" => ScalarType.Int64,
        "I32" => ScalarType.Int32,
        "I16" => ScalarType.Int16,
        "I8" => ScalarType.Int8,
        "U8" => ScalarType.Byte,
        "BOOL" => ScalarType.Bool,
        _ => null,
    };

    /// <summary>The safetensors dtype name of a TorchSharp dtype, or null when it has none.</summary>
    public static string? ToSafeTensorsName(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 => "F64",
        ScalarType.Float32 => "F32",
        ScalarType.Float16 => "F16",
        ScalarType.BFloat16 => "BF16",
        ScalarType.Int64 => "I64",
        ScalarType.Int32 => "I32",
        ScalarType.Int16 => "I16",
        ScalarType.Int8 => "I8",
        ScalarType.Byte => "U8",
        ScalarType.Bool => "BOOL",
        _ => null,
    };

    /// <summary>Bytes per element.</summary>
    public static long ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        ScalarType.Int8 or ScalarType.Byte or ScalarType.Bool => 1,
        _ => throw new ArgumentException($"dtype {dtype} has no safetensors equivalent.", nameof(dtype)),
    };

    /// <summary>
    /// Calls <paramref name="action"/> on the raw bytes of a contiguous CPU tensor, in order, in blocks below 1 GiB
    /// (a span cannot address more than 2 GiB).
    /// </summary>
    internal static void ForEachByteBlock(Tensor tensor, SpanAction action)
    {
        long total = tensor.numel() * ElementSize(tensor.dtype);
        if (total == 0)
            return;
        if (total <= MaxBlockBytes || tensor.dim() == 0)
        {
            action(tensor.bytes);
            return;
        }
        long rows = tensor.shape[0];
        long rowBytes = total / rows;
        long perBlock = Math.Max(1, MaxBlockBytes / Math.Max(rowBytes, 1));
        for (long start = 0; start < rows; start += perBlock)
        {
            using Tensor block = tensor.narrow(0, start, Math.Min(perBlock, rows - start));
            ForEachByteBlock(block, action);
        }
    }

    internal delegate void SpanAction(Span<byte> block);
}
