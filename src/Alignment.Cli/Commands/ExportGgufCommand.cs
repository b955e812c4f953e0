using Alignment.Export;

namespace Alignment.Cli.Commands;

/// <summary><c>align export-gguf</c>: a Hugging Face model folder (or a PEFT adapter on it) to a GGUF file for llama.cpp, LLamaSharp and Ollama.</summary>
internal static class ExportGgufCommand
{
    public static Command Create(CliContext context)
    {
        var model = CliOption.Text("model", "A Hugging Face model folder (config.json, safetensors, tokenizer.json).", null, "model_name_or_path", "model-name-or-path");
        model.Required = true;
        var output = CliOption.Text("out", "The GGUF file to write (replaced when it exists; written only when complete).", null, "outfile", "output");
        output.Required = true;
        var type = CliOption.Choice("type", "How matrices are stored: f32, f16, bf16 or q8_0 (vectors stay f32).", "f16", ["f32", "f16", "bf16", "q8_0"], "outtype");
        var adapter = CliOption.Text("adapter", "A PEFT LoRA adapter folder on --model: writes the adapter alone as a GGUF LoRA adapter (load it on the base model's GGUF).",
            null, "lora_path", "lora-path");
        var command = CliCommand.New("export-gguf", "Export a model folder, or a LoRA adapter on it, to GGUF for llama.cpp, LLamaSharp and Ollama.", model, adapter, output, type);
        command.SetAction(parse =>
        {
            string folder = parse.GetValue(model)!, path = parse.GetValue(output)!;
            if (!Directory.Exists(folder))
                throw new DirectoryNotFoundException($"--model: '{folder}' is not a folder.");
            GgufFileType fileType = parse.GetValue(type) switch { "f32" => GgufFileType.F32, "bf16" => GgufFileType.BF16, "q8_0" => GgufFileType.Q8_0, _ => GgufFileType.F16 };
            string? adapterFolder = parse.GetValue(adapter);
            if (adapterFolder is not null && !Directory.Exists(adapterFolder))
                throw new DirectoryNotFoundException($"--adapter: '{adapterFolder}' is not a folder.");
            if (context.WritesFiles)
            {
                if (adapterFolder is null)
                    GgufExport.ExportModel(folder, path, fileType);
                else
                    GgufExport.ExportAdapter(adapterFolder, folder, path, fileType);
                context.Output.WriteLine($"{adapterFolder ?? folder} → {path} ({parse.GetValue(type)}, {new FileInfo(path).Length / (1024.0 * 1024):F1} MiB)");
            }
            return 0;
        });
        return command;
    }
}
