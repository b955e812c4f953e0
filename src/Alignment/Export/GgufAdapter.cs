using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Alignment.Models;

namespace Alignment.Export;

/// <summary>A PEFT LoRA adapter folder as GGUF needs it: α (rsLoRA folded in), the weights file, and each adapted projection's tensors.</summary>
internal sealed partial class GgufAdapter
{
    GgufAdapter(double alpha, string weightsPath) => (Alpha, WeightsPath) = (alpha, weightsPath);

    /// <summary>The α llama.cpp divides by r: PEFT's lora_alpha, or lora_alpha·√r for rsLoRA (whose scale is α/√r).</summary>
    public double Alpha { get; }

    public string WeightsPath { get; }

    public static GgufAdapter Read(string folder)
    {
        string configPath = Path.Combine(folder, LoraAdapters.ConfigFileName), weights = Path.Combine(folder, LoraAdapters.WeightsFileName);
        if (!File.Exists(configPath))
            throw new FileNotFoundException($"No {LoraAdapters.ConfigFileName} in '{folder}'.", configPath);
        if (!File.Exists(weights))
            throw new FileNotFoundException($"No adapter_model.safetensors in '{folder}'.", weights);
        JsonObject json = JsonNode.Parse(File.ReadAllText(configPath)) as JsonObject ?? throw new InvalidDataException($"'{configPath}' is not a JSON object.");
        if ((string?)json["peft_type"] is { } peft && peft != "LORA")
            throw new NotSupportedException($"'{configPath}': peft_type {peft}; GGUF adapters are LoRA.");
        int rank = json["r"]?.GetValue<int>() ?? throw new InvalidDataException($"'{configPath}' has no \"r\".");
        double alpha = json["lora_alpha"]?.GetValue<double>() ?? 8;
        bool rslora = json["use_rslora"]?.GetValue<bool>() == true;
        return new GgufAdapter(rslora ? alpha * Math.Sqrt(rank) : alpha, weights);
    }

    /// <summary>Each adapted projection: its base tensor's GGUF name, the A and B tensor names, and the head count whose q/k permutation B takes (llama only).</summary>
    public IEnumerable<(string Name, string A, string B, int? Heads)> Tensors(DecoderConfig config, string architecture, SafeTensorsFile file)
    {
        foreach (string key in file.Entries.Keys.Where(k => k.EndsWith(".lora_A.weight", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            Match match = Module().Match(key);
            if (!match.Success)
                throw new NotSupportedException($"'{file.Path}': '{key}' adapts a module GGUF has no name for (it adapts q/k/v/o and gate/up/down projections).");
            int layer = int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            string projection = match.Groups[2].Value;
            string b = key[..^".lora_A.weight".Length] + ".lora_B.weight";
            if (!file.Entries.ContainsKey(b))
                throw new InvalidDataException($"'{file.Path}' has '{key}' but no '{b}'.");
            string name = projection switch
            {
                "q_proj" => "attn_q", "k_proj" => "attn_k", "v_proj" => "attn_v", "o_proj" => "attn_output",
                "gate_proj" => "ffn_gate", "up_proj" => "ffn_up", _ => "ffn_down",
            };
            int? heads = architecture != "llama" ? null : projection switch { "q_proj" => config.NumAttentionHeads, "k_proj" => config.NumKeyValueHeads, _ => null };
            yield return ($"blk.{layer}.{name}.weight", key, b, heads);
        }
    }

    [GeneratedRegex(@"^base_model\.model\.model\.layers\.(\d+)\.(?:self_attn|mlp)\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.lora_A\.weight$")]
    private static partial Regex Module();
}
