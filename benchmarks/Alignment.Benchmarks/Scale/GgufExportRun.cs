using System.Diagnostics;
using Alignment.Export;
using Alignment.Models;
using Alignment.Tokenization;
using static TorchSharp.torch;

namespace Alignment.Benchmarks.Scale;

/// <summary>
/// GGUF export of a 1B model: Llama-3.2-1B's config (1.24 B parameters, tied, llama3 rope scaling) with random weights,
/// saved as a bfloat16 Hugging Face folder, then exported in a fresh state (the model disposed, freed pages returned).
/// Reports the export's time and its peak resident memory above the process's before it, against the checkpoint's size.
/// </summary>
/// <remarks>Run: <c>dotnet run -c Release --project benchmarks/Alignment.Benchmarks -- export-gguf [f32|f16|bf16|q8_0] [folder]</c>.</remarks>
internal static class GgufExportRun
{
    public static int Run(string[] args)
    {
        Alignment.Native.TorchRuntime.EnsureLoaded();
        GgufFileType type = (args.Length > 0 ? args[0] : "f16") switch { "f32" => GgufFileType.F32, "bf16" => GgufFileType.BF16, "q8_0" => GgufFileType.Q8_0, _ => GgufFileType.F16 };
        string folder = args.Length > 1 ? args[1] : Path.Combine(Path.GetTempPath(), "gguf-1b");
        if (!File.Exists(Path.Combine(folder, "config.json")))
        {
            var clock = Stopwatch.StartNew();
            var config = DecoderConfig.FromJson(ScaleRun.Config(2048, 8192, 16, 32, 8, 128_256, tied: true, theta: 500_000, llama3: true));
            using (var model = new LlamaForCausalLM(config, ScalarType.BFloat16))
            {
                model.InitializeWeights(seed: 1);
                model.SavePretrained(folder);
            }
            ByteLevelTokenizer.WriteFolder(folder);
            Console.WriteLine($"wrote a random {config.ParameterCount / 1e9:F2} B-parameter bfloat16 model to {folder} in {clock.Elapsed.TotalSeconds:F0} s");
        }
        long checkpoint = Directory.GetFiles(folder, "*.safetensors").Sum(f => new FileInfo(f).Length);
        string output = Path.Combine(folder, $"model-{type}.gguf");
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long baseline = PeakNativeMemory.ResetPeak();
        var timer = Stopwatch.StartNew();
        GgufExport.ExportModel(folder, output, type);
        double seconds = timer.Elapsed.TotalSeconds;
        long peak = PeakNativeMemory.PeakBytes() - baseline;
        Console.WriteLine($"| {type} | {seconds:F0} s | {new FileInfo(output).Length >> 20} MiB | checkpoint {checkpoint >> 20} MiB | peak RSS above the start {peak >> 20} MiB ({(double)peak / checkpoint:P0} of the checkpoint) |");
        File.Delete(output);
        return 0;
    }
}
