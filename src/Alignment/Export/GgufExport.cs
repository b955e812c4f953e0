using Alignment.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Export;

/// <summary>
/// Exports a Hugging Face model folder (as <c>SavePretrained</c> writes it) to a GGUF file that llama.cpp, LLamaSharp
/// and Ollama load: Llama 2/3/3.x, Mistral, SmolLM and TinyLlama as llama.cpp's <c>llama</c> architecture, Qwen2/2.5 as
/// <c>qwen2</c>, with their byte-level BPE tokenizer and chat template. Weights stream tensor by tensor, in slices of rows,
/// so memory stays near one slice rather than the model; the file appears only when complete.
/// </summary>
public static class GgufExport
{
    /// <summary>Writes <paramref name="modelFolder"/>'s model to <paramref name="outputPath"/>.</summary>
    /// <param name="modelFolder">config.json, safetensors (one file or sharded), tokenizer.json and tokenizer_config.json.</param>
    /// <param name="outputPath">The .gguf file; replaced when it exists.</param>
    /// <param name="type">How matrices are stored.</param>
    /// <exception cref="NotSupportedException">The architecture, its rope scaling or its tokenizer cannot be exported (named); nothing is written.</exception>
    /// <exception cref="FileNotFoundException">A file of the folder is missing.</exception>
    public static void ExportModel(string modelFolder, string outputPath, GgufFileType type = GgufFileType.F16)
    {
        ArgumentNullException.ThrowIfNull(modelFolder);
        ArgumentNullException.ThrowIfNull(outputPath);
        if (!Enum.IsDefined(type))
            throw new ArgumentOutOfRangeException(nameof(type), type, "Not a GGUF file type this library writes (f32, f16, bf16, q8_0).");
        DecoderConfig config = DecoderConfig.Load(Path.Combine(modelFolder, "config.json"));
        string architecture = GgufArchitecture.Of(config);
        using SafeTensorsCheckpoint checkpoint = SafeTensorsCheckpoint.Open(modelFolder);
        var gguf = new GgufWriter();
        GgufArchitecture.AddMetadata(gguf, config, architecture, Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelFolder))), type);
        GgufVocabulary.Add(gguf, modelFolder, config.VocabSize);
        foreach (var (name, source, shape, transform) in GgufArchitecture.Tensors(config, architecture, checkpoint))
        {
            GgmlType stored = Stored(shape, type);
            gguf.AddTensor(name, shape, stored, stream => WriteTensor(stream, source, transform, stored));
        }
        gguf.Write(outputPath);
    }

    /// <summary>
    /// Writes a PEFT LoRA adapter (<c>adapter_config.json</c>, <c>adapter_model.safetensors</c>) as a GGUF LoRA adapter
    /// that llama.cpp applies on the base model's GGUF (LLamaSharp: <c>LoadLoraFromFile</c>, Ollama: <c>ADAPTER</c>):
    /// <c>general.type</c> adapter, <c>adapter.type</c> lora, <c>adapter.lora.alpha</c>, and for every adapted
    /// projection its <c>.lora_a</c> (r × in) and <c>.lora_b</c> (out × r), the <c>llama</c> architecture's q/k row
    /// permutation applied to B. rsLoRA's α/√r scale is written as the α that llama.cpp's α/r gives it.
    /// </summary>
    /// <param name="adapterFolder">The PEFT adapter folder (as <c>LoraAdapters.Save</c> and PEFT write it).</param>
    /// <param name="baseModelFolder">The base model's folder: its config.json says the architecture and head counts.</param>
    /// <param name="outputPath">The .gguf file; replaced when it exists.</param>
    /// <param name="type">How the adapter matrices are stored.</param>
    /// <exception cref="NotSupportedException">The base architecture cannot be exported, or the adapter adapts a module GGUF has no name for.</exception>
    /// <exception cref="FileNotFoundException">A file of either folder is missing.</exception>
    public static void ExportAdapter(string adapterFolder, string baseModelFolder, string outputPath, GgufFileType type = GgufFileType.F32)
    {
        ArgumentNullException.ThrowIfNull(adapterFolder);
        ArgumentNullException.ThrowIfNull(outputPath);
        if (!Enum.IsDefined(type))
            throw new ArgumentOutOfRangeException(nameof(type), type, "Not a GGUF file type this library writes (f32, f16, bf16, q8_0).");
        DecoderConfig config = DecoderConfig.Load(Path.Combine(baseModelFolder ?? throw new ArgumentNullException(nameof(baseModelFolder)), "config.json"));
        string architecture = GgufArchitecture.Of(config);
        var adapter = GgufAdapter.Read(adapterFolder);
        var gguf = new GgufWriter();
        gguf.Add("general.architecture", architecture);
        gguf.Add("general.type", "adapter");
        gguf.Add("general.name", Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(adapterFolder))));
        gguf.Add("general.alignment", (uint)GgufWriter.Alignment);
        gguf.Add("adapter.type", "lora");
        gguf.Add("adapter.lora.alpha", (float)adapter.Alpha);
        using SafeTensorsFile file = SafeTensorsFile.Open(adapter.WeightsPath);
        foreach (var (name, a, b, heads) in adapter.Tensors(config, architecture, file))
        {
            var (aShape, bShape) = (file.Entries[a].Shape, file.Entries[b].Shape);
            GgmlType aType = Stored(aShape, type), bType = Stored(bShape, type);
            gguf.AddTensor(name + ".lora_a", aShape, aType, stream => WriteTensor(stream, () => file.Read(a), null, aType));
            gguf.AddTensor(name + ".lora_b", bShape, bType, stream => WriteTensor(stream, () => file.Read(b),
                heads is { } h ? w => GgufArchitecture.Permute(w, h) : null, bType));
        }
        gguf.Write(outputPath);
    }

    /// <summary>The type a tensor of <paramref name="shape"/> is stored as: vectors as F32; Q8_0 only when rows split into blocks of 32 (else F16, as llama.cpp's converter).</summary>
    internal static GgmlType Stored(long[] shape, GgufFileType type) =>
        shape.Length < 2 ? GgmlType.F32 : type switch
        {
            GgufFileType.F32 => GgmlType.F32,
            GgufFileType.BF16 => GgmlType.BF16,
            GgufFileType.Q8_0 when shape[^1] % 32 == 0 => GgmlType.Q8_0,
            _ => GgmlType.F16,
        };

    /// <summary>Writes one tensor in slices of about 4M values: read, transform, convert to float32, encode, write, dispose.</summary>
    static void WriteTensor(Stream stream, Func<Tensor> source, Func<Tensor, Tensor>? transform, GgmlType type)
    {
        using var scope = NewDisposeScope();
        Tensor tensor = source();
        if (transform is not null)
            tensor = transform(tensor);
        long rows = tensor.dim() < 2 ? 1 : tensor.shape[0];
        long perRow = tensor.numel() / Math.Max(1, rows);
        long step = Math.Max(1, (4L << 20) / Math.Max(1, perRow));
        for (long start = 0; start < rows; start += step)
        {
            using var slice = NewDisposeScope();
            Tensor part = (tensor.dim() < 2 ? tensor : tensor.narrow(0, start, Math.Min(step, rows - start))).to_type(ScalarType.Float32).contiguous();
            float[] values = part.data<float>().ToArray();
            stream.Write(GgmlQuantization.Encode(values, type));
        }
    }
}
