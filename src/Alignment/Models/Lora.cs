using Alignment.Models.Decoder;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Alignment.Models;

/// <summary>LoRA hyper-parameters (Hu et al. 2021), named as in PEFT's <c>LoraConfig</c>.</summary>
public sealed record LoraOptions
{
    /// <summary>The projections Hugging Face's Llama family names, all attention and MLP projections.</summary>
    public static IReadOnlyList<string> AllProjections { get; } = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

    /// <summary>PEFT's <c>all-linear</c>: every attention and MLP projection of the decoder layers (not the lm_head).</summary>
    public const string AllLinear = "all-linear";

    /// <summary>
    /// PEFT's default <c>target_modules</c> for a <c>model_type</c> (its <c>TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING</c>):
    /// <c>c_attn</c> for GPT-2, <c>q_proj</c> and <c>v_proj</c> for the Llama and Gemma families.
    /// </summary>
    /// <exception cref="ArgumentException">A model type without a default; name the targets.</exception>
    public static IReadOnlyList<string> DefaultTargetModules(string modelType) => modelType switch
    {
        "gpt2" => ["c_attn"],
        "llama" or "mistral" or "qwen2" or "qwen3" or "gemma" or "gemma2" or "gemma3_text" => ["q_proj", "v_proj"],
        _ => throw new ArgumentException($"PEFT has no default target_modules for model_type '{modelType}'; name them.", nameof(modelType)),
    };

    /// <summary><c>r</c>: rank of the update.</summary>
    public int Rank { get; init; } = 8;

    /// <summary><c>lora_alpha</c>: the update is scaled by α / r.</summary>
    public double Alpha { get; init; } = 16;

    /// <summary><c>lora_dropout</c> on the adapter's input.</summary>
    public double Dropout { get; init; }

    /// <summary>
    /// <c>target_modules</c>: projection names (the last part of the module name, e.g. <c>q_proj</c>), or
    /// <see cref="AllLinear"/> alone. Null, as in PEFT, takes the family's default (<see cref="DefaultTargetModules"/>).
    /// </summary>
    public IReadOnlyList<string>? TargetModules { get; init; }

    /// <summary>Checks the values.</summary>
    /// <exception cref="ArgumentException">A value is out of range; the message names it.</exception>
    public void Validate() => new OptionErrors()
        .Check(Rank >= 1, $"r (lora rank) must be >= 1, got {Rank}.")
        .Check(Alpha > 0, $"lora_alpha must be > 0, got {Alpha}.")
        .Check(Dropout >= 0 && Dropout < 1, $"lora_dropout must be in [0, 1), got {Dropout}.")
        .Check(TargetModules is null or { Count: > 0 }, "target_modules must name at least one projection (or be left out for the family's default).")
        .ThrowIfAny();
}

/// <summary>Attaches, toggles, merges, saves and loads LoRA adapters on a <see cref="LlamaForCausalLM"/>.</summary>
public static class LoraAdapters
{
    /// <summary>PEFT's adapter weights file name.</summary>
    public const string WeightsFileName = "adapter_model.safetensors";

    /// <summary>PEFT's adapter config file name.</summary>
    public const string ConfigFileName = "adapter_config.json";

    const string PeftPrefix = "base_model.model.";

    /// <summary>
    /// Attaches adapters to every targeted projection and freezes every base parameter, so that only the adapters train.
    /// The model's <see cref="LlamaForCausalLM.LoraOptions"/> then name the targets resolved (the family's default, or
    /// every projection for <c>all-linear</c>).
    /// </summary>
    /// <returns>The module names that received an adapter.</returns>
    /// <exception cref="ArgumentException">Bad options, or no projection matches the targets (the model's are listed).</exception>
    /// <exception cref="InvalidOperationException">The model already has adapters.</exception>
    public static IReadOnlyList<string> Attach(LlamaForCausalLM model, LoraOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (model.Projections.Any(p => p.Projection.HasLora))
            throw new InvalidOperationException("The model already has LoRA adapters; merge or remove them first.");
        static string Short(string name) => name[(name.LastIndexOf('.') + 1)..];
        List<string> known = model.Projections.Select(p => Short(p.Name)).Distinct().ToList();
        IReadOnlyList<string> wanted = options.TargetModules switch
        {
            null => LoraOptions.DefaultTargetModules(model.Config.ModelType),
            [LoraOptions.AllLinear] => known,
            var named => named,
        };
        var targets = model.Projections.Where(p => wanted.Contains(Short(p.Name))).ToList();
        if (targets.Count == 0)
            throw new ArgumentException(
                $"No projection matches target_modules [{string.Join(", ", wanted)}]; this {model.Config.ModelType} model has: {string.Join(", ", known)}.",
                nameof(options));
        foreach (var parameter in model.parameters())
            parameter.requires_grad = false;
        foreach (var (_, projection) in targets)
            projection.AttachLora(options.Rank, options.Alpha, options.Dropout);
        model.LoraOptions = options with { TargetModules = wanted.Where(w => targets.Any(t => Short(t.Name) == w)).ToList() };
        return targets.Select(t => t.Name).ToList();
    }

    /// <summary>Switches every adapter on or off (off: the model computes exactly its base weights).</summary>
    public static void SetEnabled(LlamaForCausalLM model, bool enabled)
    {
        foreach (var (_, projection) in model.Projections.Where(p => p.Projection.HasLora))
            projection.LoraEnabled = enabled;
    }

    /// <summary>Whether any adapter is attached.</summary>
    public static bool HasAdapters(LlamaForCausalLM model) => model.Projections.Any(p => p.Projection.HasLora);

    /// <summary>The adapters' parameters (what an optimizer should see when LoRA is on).</summary>
    public static IEnumerable<Parameter> Parameters(LlamaForCausalLM model) =>
        model.Projections.Where(p => p.Projection.HasLora).SelectMany(p => new[] { p.Projection.LoraA!, p.Projection.LoraB! });

    /// <summary>Adds each adapter's <c>α/r · B·A</c> into its base weight and removes the adapters.</summary>
    public static void Merge(LlamaForCausalLM model)
    {
        foreach (var (_, projection) in model.Projections)
            projection.MergeLora();
        model.LoraOptions = null;
    }

    /// <summary>
    /// Saves the adapters alone as a PEFT adapter folder (<c>adapter_model.safetensors</c>, <c>adapter_config.json</c>)
    /// that PEFT and this library load onto the base model.
    /// </summary>
    /// <exception cref="InvalidOperationException">The model has no adapters.</exception>
    public static void Save(LlamaForCausalLM model, string folder)
    {
        LoraOptions options = model.LoraOptions ?? throw new InvalidOperationException("The model has no LoRA adapters to save.");
        Directory.CreateDirectory(folder);
        var tensors = new List<KeyValuePair<string, Tensor>>();
        foreach (var (name, projection) in model.Projections.Where(p => p.Projection.HasLora))
        {
            tensors.Add(new($"{PeftPrefix}{name}.lora_A.weight", projection.LoraA!));
            tensors.Add(new($"{PeftPrefix}{name}.lora_B.weight", projection.LoraB!));
        }
        SafeTensors.Save(Path.Combine(folder, WeightsFileName), tensors);
        var config = new JsonObject
        {
            ["peft_type"] = "LORA",
            ["task_type"] = "CAUSAL_LM",
            ["r"] = options.Rank,
            ["lora_alpha"] = options.Alpha,
            ["lora_dropout"] = options.Dropout,
            ["target_modules"] = new JsonArray(options.TargetModules!.Select(t => (JsonNode)t).ToArray()),
            ["bias"] = "none",
            ["fan_in_fan_out"] = model.Projections.Any(p => p.Projection.HasLora && p.Projection.FanInFanOut), // GPT-2's Conv1D
            ["base_model_name_or_path"] = model.SourceFolder,
        };
        File.WriteAllText(Path.Combine(folder, ConfigFileName), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Attaches the adapters saved in a PEFT adapter folder, with their weights.</summary>
    /// <exception cref="FileNotFoundException">A file of the adapter folder is missing.</exception>
    /// <exception cref="InvalidDataException">The config or weights do not fit the model; the message says which.</exception>
    public static void Load(LlamaForCausalLM model, string folder)
    {
        string configPath = Path.Combine(folder, ConfigFileName);
        if (!File.Exists(configPath))
            throw new FileNotFoundException($"No {ConfigFileName} in '{folder}'.", configPath);
        JsonObject json = JsonNode.Parse(File.ReadAllText(configPath))?.AsObject() ?? throw new InvalidDataException($"'{configPath}' is empty.");
        var options = new LoraOptions
        {
            Rank = json["r"]?.GetValue<int>() ?? throw new InvalidDataException($"'{configPath}' has no \"r\"."),
            Alpha = json["lora_alpha"]?.GetValue<double>() ?? 8,
            Dropout = json["lora_dropout"]?.GetValue<double>() ?? 0,
            TargetModules = json["target_modules"] is JsonArray modules
                ? modules.Select(m => m!.GetValue<string>()).ToArray()
                : throw new InvalidDataException($"'{configPath}' has no \"target_modules\" list."),
        };
        IReadOnlyList<string> attached = Attach(model, options);
        using var file = SafeTensorsFile.Open(Path.Combine(folder, WeightsFileName));
        var byName = model.Projections.ToDictionary(p => p.Name, p => p.Projection);
        using var noGrad = no_grad();
        foreach (string name in attached)
        {
            Projection projection = byName[name];
            foreach (var (suffix, target) in new[] { ("lora_A", projection.LoraA!), ("lora_B", projection.LoraB!) })
            {
                string key = $"{PeftPrefix}{name}.{suffix}.weight";
                if (!file.Entries.TryGetValue(key, out SafeTensorEntry? entry))
                    throw new InvalidDataException($"'{file.Path}' has no tensor '{key}'.");
                if (!entry.Shape.SequenceEqual(target.shape))
                    throw new InvalidDataException($"'{file.Path}': '{key}' is [{string.Join(", ", entry.Shape)}], the model expects [{string.Join(", ", target.shape)}].");
                using Tensor loaded = file.Read(key);
                target.copy_(loaded);
            }
        }
    }
}
