using Alignment.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Cli.Arguments;

/// <summary>The model folder, how to load it, and LoRA.</summary>
internal sealed class ModelArguments : IArgumentGroup
{
    public Option<string?> Model { get; } = CliOption.Text("model", "A Hugging Face model folder (config.json, safetensors, tokenizer).", null, "model_name_or_path", "model-name-or-path");
    readonly Option<string?> _dtype = CliOption.Choice("dtype", "dtype of the weights in memory.", "float32",
        ["float32", "fp32", "bfloat16", "bf16", "float16", "fp16", "float64", "fp64"], "torch_dtype", "torch-dtype");
    readonly Option<string?> _device = CliOption.Text("device", "Device of the weights: cpu, cuda, cuda:1 ….", "cpu");
    readonly Option<int?> _loraRank = CliOption.Int("lora-rank", "Train LoRA adapters of this rank instead of all weights (the saved model has them merged).", null, "lora_r", "lora-r");
    readonly Option<double?> _loraAlpha = CliOption.Double("lora-alpha", "LoRA scaling α.", new LoraOptions().Alpha);
    readonly Option<double?> _loraDropout = CliOption.Double("lora-dropout", "Dropout on the LoRA path.", new LoraOptions().Dropout);
    readonly Option<string?> _loraTargets = CliOption.Text("lora-target-modules",
        "Comma-separated projections that get adapters, or all-linear; default PEFT's for the family (q_proj,v_proj; GPT-2: c_attn).", null);
    readonly Option<string?> _chatTemplate = CliOption.Text("chat-template-path",
        "The chat template, instead of the model folder's own or for a folder without one: a name (" + string.Join(", ", ChatTemplates.Names) +
        "), a .jinja file, a tokenizer_config.json or a model folder.", null, "chat_template_path", "chat-template");
    readonly bool _lora;

    /// <param name="lora">Offer the LoRA options.</param>
    /// <param name="required">--model must be given (a command that can do without one checks it itself).</param>
    public ModelArguments(bool lora = true, bool required = true)
    {
        _lora = lora;
        Model.Required = required;
    }

    public IEnumerable<Option> Options => new Option[] { Model, _dtype, _device, _chatTemplate }.Concat(_lora ? [_loraRank, _loraAlpha, _loraDropout, _loraTargets] : []);

    public string Folder(ParseResult parse) => parse.GetValue(Model)!;

    public ModelLoadOptions LoadOptions(ParseResult parse)
    {
        string device = parse.GetValue(_device)!;
        if (device.StartsWith("cuda", StringComparison.OrdinalIgnoreCase) && !torch.cuda.is_available())
            throw new ArgumentException($"--device {device}: TorchSharp sees no CUDA device; this build of align uses the CPU backend " +
                "(TorchSharp-cpu). Build it with the CUDA backend package (TorchSharp-cuda-linux or -windows) and check the NVIDIA driver.");
        Device parsed;
        try
        {
            parsed = torch.device(device);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidOperationException)
        {
            throw new ArgumentException($"--device '{device}' is not a device (cpu, cuda, cuda:N).", e);
        }

        return new ModelLoadOptions
        {
            DType = parse.GetValue(_dtype) switch
            {
                "bfloat16" or "bf16" => ScalarType.BFloat16,
                "float16" or "fp16" => ScalarType.Float16,
                "float64" or "fp64" => ScalarType.Float64,
                _ => ScalarType.Float32,
            },
            Device = parsed,
        };
    }

    /// <summary>The LoRA settings, validated, or null for full-weight training.</summary>
    public LoraOptions? Lora(ParseResult parse)
    {
        if (!_lora || parse.GetValue(_loraRank) is not { } rank)
            return null;
        var lora = new LoraOptions
        {
            Rank = rank,
            Alpha = parse.GetValue(_loraAlpha)!.Value,
            Dropout = parse.GetValue(_loraDropout)!.Value,
            TargetModules = parse.GetValue(_loraTargets)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
        };
        lora.Validate();
        return lora;
    }

    /// <summary>The policy to train, with LoRA adapters attached when asked.</summary>
    public PolicyModel LoadPolicy(ParseResult parse, LoraOptions? lora)
    {
        var model = LlamaForCausalLM.FromPretrained(Folder(parse), LoadOptions(parse));
        if (lora is not null)
            LoraAdapters.Attach(model, lora);
        return new PolicyModel(model);
    }

    /// <summary>
    /// The folder's tokenizer, checked against its config.json before any weight loads, and the chat template:
    /// <c>--chat-template-path</c> when given, else the folder's own (null when it has none).
    /// </summary>
    public (ModelTokenizer Tokenizer, IChatTemplate? Template) Tokenizer(ParseResult parse)
    {
        string folder = Folder(parse);
        var tokenizer = ModelTokenizer.FromFolder(folder);
        tokenizer.EnsureFits(DecoderConfig.Load(Path.Combine(folder, "config.json")).VocabSize);
        if (parse.GetValue(_chatTemplate) is { } path)
        {
            try
            {
                return (tokenizer, ChatTemplates.Load(path, tokenizer));
            }
            catch (FileNotFoundException e)
            {
                throw new FileNotFoundException($"--chat-template-path: {e.Message}", path, e);
            }
        }
        return (tokenizer, tokenizer.ChatTemplateSource is null ? null : ChatTemplates.For(tokenizer));
    }
}
