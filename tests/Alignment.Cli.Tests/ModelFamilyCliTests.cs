using System.Text.Json.Nodes;
using Alignment.Models;
using Alignment.Tests.Models;
using static TorchSharp.torch;

namespace Alignment.Cli.Tests;

/// <summary>One <c>align dpo</c> run per model family on a tiny model, full and with LoRA, as the tutorials run them.</summary>
public sealed class ModelFamilyCliTests : CliFixture
{
    static JsonObject Config(string family)
    {
        if (family == "gpt2")
            return TinyModels.Gpt2ConfigJson();
        if (family == "phi3")
            return TinyModels.Phi3ConfigJson();
        if (family.StartsWith("gemma", StringComparison.Ordinal))
            return TinyModels.GemmaConfigJson(family);
        JsonObject json = TinyModels.ConfigJson(family, tied: family == "qwen3");
        if (family == "qwen3")
            json["head_dim"] = 16; // heads × head_dim ≠ hidden, as Qwen3's
        return json;
    }

    /// <summary>A folder of the family with a byte-level tokenizer and no chat template (plain-text pairs need none).</summary>
    string Folder(string family)
    {
        JsonObject json = Config(family);
        json["vocab_size"] = 300;
        string folder = _models.Folder(family, json);
        foreach (string file in Directory.GetFiles(_tokenizers.Folder(family + "-tok", gpt2Style: family == "gpt2")))
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)), overwrite: true);
        return folder;
    }

    string PlainPairs() => Data("plain.jsonl",
        """{"prompt": "hello", "chosen": " world", "rejected": " the"}""",
        """{"prompt": "the", "chosen": " hello world", "rejected": " hello"}""",
        """{"prompt": "world", "chosen": " the end", "rejected": " hello"}""");

    [Theory]
    [InlineData("gpt2", false)]
    [InlineData("gpt2", true)]
    [InlineData("qwen3", false)]
    [InlineData("qwen3", true)]
    [InlineData("mistral", true)]
    [InlineData("qwen2", false)]
    [InlineData("gemma3_text", false)]
    [InlineData("gemma2", false)]
    [InlineData("gemma2", true)]
    [InlineData("gemma3_text", true)]
    [InlineData("phi3", false)]
    [InlineData("phi3", true)]
    public void Dpo_trains_and_saves_each_family_under_its_own_names(string family, bool lora)
    {
        string model = Folder(family), output = Path.Combine(_models.Root, $"{family}-{lora}");
        // PEFT has no default targets for Phi-3: name its fused attention projection.
        string[] loraArgs = !lora ? [] : family == "phi3" ? ["--lora-rank", "2", "--lora-alpha", "4", "--lora-target-modules", "qkv_proj"]
            : ["--lora-rank", "2", "--lora-alpha", "4"];
        var (code, text, error) = Run(["dpo", "--model", model, "--dataset", PlainPairs(), "--output", output, "--max-steps", "3",
            "--batch-size", "3", "--learning-rate", "1e-2", "--seed", "1", .. loraArgs]);
        Assert.True(code == 0, error);
        Assert.Contains("step 3/3", text);
        var metrics = File.ReadAllLines(Path.Combine(output, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Equal(3, metrics.Count);
        Assert.All(metrics, m => Assert.True(double.IsFinite(m["loss"]!.GetValue<double>())));
        Assert.Equal(Math.Log(2), metrics[0]["loss"]!.GetValue<double>(), 6); // the policy starts as its reference

        using var scope = NewDisposeScope();
        using var before = LlamaForCausalLM.FromPretrained(model);
        using var after = LlamaForCausalLM.FromPretrained(output);
        Assert.Equal(family, after.Config.ModelType);
        var changed = before.state_dict().Where(kv => !kv.Value.eq(after.state_dict()[kv.Key]).all().item<bool>()).Select(kv => kv.Key).ToList();
        // LoRA without targets takes PEFT's: only those weights move (merged into the saved folder).
        string[] targets = family switch
        {
            "gpt2" => ["attn.c_attn.weight"],
            "phi3" => ["self_attn.qkv_proj.weight"],
            _ => ["self_attn.q_proj.weight", "self_attn.v_proj.weight"],
        };
        if (lora)
            Assert.Equal(before.Config.NumHiddenLayers * targets.Length, changed.Count(name => targets.Any(name.EndsWith)));
        Assert.True(lora ? changed.All(name => targets.Any(name.EndsWith)) : changed.Count > 10, string.Join(", ", changed));

        var (generated, _, generateError) = Run("generate", "--model", output, "--prompt", "hello", "--max-new-tokens", "4", "--temperature", "0");
        Assert.True(generated == 0, generateError);
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("gemma2")] // soft-capped: SFT's NLL goes through the full logits
    [InlineData("phi3")]
    public void Sft_lowers_the_loss_of_each_family(string family)
    {
        string model = Folder(family), output = Path.Combine(_models.Root, $"{family}-sft");
        string data = Data("sft.jsonl", """{"prompt": "hello", "completion": " world"}""", """{"prompt": "the", "completion": " hello world"}""");
        var (code, _, error) = Run("sft", "--model", model, "--dataset", data, "--output", output, "--max-steps", "8", "--batch-size", "2",
            "--learning-rate", "1e-2", "--seed", "1");
        Assert.True(code == 0, error);
        double[] losses = File.ReadAllLines(Path.Combine(output, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!["loss"]!.GetValue<double>()).ToArray();
        Assert.Equal(8, losses.Length);
        Assert.True(losses[^1] < losses[0] * 0.8, $"{family}: {string.Join(", ", losses)}");
    }
}
