using System.Text.Json.Nodes;
using Alignment.Export;
using Alignment.Models;
using Alignment.Tests.Models;
using Alignment.Tests.Tokenization;
using Alignment.Tokenization;
using static TorchSharp.torch;

namespace Alignment.Tests.Export;

public sealed class GgufExportTests : IDisposable
{
    readonly TinyModels _models = new();
    readonly TinyTokenizers _tokenizers = new();

    public void Dispose()
    {
        _models.Dispose();
        _tokenizers.Dispose();
    }

    /// <summary>A tiny random model folder of the family with the tests' real byte-level BPE tokenizer and ChatML template.</summary>
    string Folder(string family, bool gpt2Style = false)
    {
        JsonObject json = family switch
        {
            "qwen2" => TinyModels.ConfigJson("qwen2", tied: true),
            "mistral" => TinyModels.ConfigJson("mistral"),
            "qwen3" => TinyModels.ConfigJson("qwen3", tied: true),
            "llama3" => TinyModels.ConfigJson(ropeScaling: new JsonObject
            {
                ["rope_type"] = "llama3", ["factor"] = 8.0, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0, ["original_max_position_embeddings"] = 32,
            }),
            _ => TinyModels.ConfigJson(),
        };
        json["vocab_size"] = 300;
        json["hidden_size"] = 64;
        json["intermediate_size"] = 96;
        if (family is "mistral" or "qwen3")
            json["head_dim"] = 32; // heads × head_dim ≠ hidden: llama.cpp reads key_length / value_length
        string folder = _models.Folder(family + (gpt2Style ? "-gpt2" : ""), json);
        foreach (string file in Directory.GetFiles(_tokenizers.Folder("tok-" + family + gpt2Style, chatTemplate: TinyTokenizers.ChatMlTemplate, gpt2Style: gpt2Style)))
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)), overwrite: true);
        return folder;
    }

    static readonly string[] Texts = ["hello world, the world said hello 123 don't", "  two  spaces\nand a line\t tab ünïcödé 🙂"];

    /// <summary>Our model's logits [position][vocab] for <paramref name="ids"/>.</summary>
    static float[][] OurLogits(LlamaForCausalLM model, IReadOnlyList<int> ids)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        Tensor input = tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0);
        Tensor logits = model.Forward(input, ones_like(input)).matmul(model.LmHeadWeight.t())[0];
        return [.. Enumerable.Range(0, ids.Count).Select(i => logits[i].data<float>().ToArray())];
    }

    /// <summary>The largest difference at any position and token, relative to that position's largest |logit|.</summary>
    static double RelativeDifference(float[][] expected, float[][] actual) =>
        expected.Zip(actual).Max(row => row.First.Zip(row.Second).Max(p => Math.Abs(p.First - p.Second)) / row.First.Max(Math.Abs));

    [Theory]
    [InlineData("llama")]
    [InlineData("llama3")]
    [InlineData("qwen2")]
    [InlineData("mistral")]
    [InlineData("qwen3")]           // per-head q/k norms, tied
    [InlineData("gpt2-tokenizer")]  // GPT-2's byte-level pre-tokenizer: llama.cpp's gpt-2
    public void An_f32_export_runs_in_llama_cpp_as_our_model_does(string family)
    {
        string folder = family == "gpt2-tokenizer" ? Folder("llama", gpt2Style: true) : Folder(family);
        string gguf = Path.Combine(folder, "model.gguf");
        GgufExport.ExportModel(folder, gguf, GgufFileType.F32);

        var tokenizer = ModelTokenizer.FromFolder(folder);
        var chat = ChatTemplates.For(tokenizer);
        using var model = LlamaForCausalLM.FromPretrained(folder);
        model.eval();
        using var llama = new LlamaCpp(gguf);
        foreach (string text in Texts)
        {
            var segments = chat.Render([new("user", text)], addGenerationPrompt: true);
            int[] ours = [.. tokenizer.Encode(segments)];
            Assert.Equal(ours, llama.Tokenize(string.Concat(segments.Select(s => s.Text))));
            double difference = RelativeDifference(OurLogits(model, ours), llama.Logits(ours));
            Assert.True(difference < 1e-4, $"{family}: logits differ by {difference:E2} of their scale");

            var greedy = TextGenerator.Generate(model, [ours.Select(i => (long)i).ToArray()], new GenerationOptions { MaxNewTokens = 20, Temperature = 0, EosTokenIds = [] })[0];
            Assert.Equal(greedy.Tokens.Select(t => (int)t), llama.Greedy(ours, 20));
        }
    }

    /// <summary>
    /// The bound, relative to a position's largest |logit|: first order, every one of the logit's 15 matmuls (2 layers × 7
    /// and the head) rounds its weights once and, in llama.cpp, its input once (f16 and q8_0 matmuls convert activations
    /// too), so 30 roundings of the format's unit u: f16 u = 2⁻¹¹, bf16 u = 2⁻⁸, q8_0 u ≈ 2.5/254 (half a step of a block
    /// whose largest |x| is about 2.5 of its deviation). Measured here: 2.3e-3, 1.7e-2 and 9.6e-2.
    /// </summary>
    [Theory]
    [InlineData(GgufFileType.F16, 30 * 4.8828125e-4)]
    [InlineData(GgufFileType.BF16, 30 * 3.90625e-3)]
    [InlineData(GgufFileType.Q8_0, 30 * 2.5 / 254)]
    public void Smaller_types_stay_within_their_precision(GgufFileType type, double bound)
    {
        string folder = Folder("llama");
        string gguf = Path.Combine(folder, $"model-{type}.gguf");
        GgufExport.ExportModel(folder, gguf, type);
        var tokenizer = ModelTokenizer.FromFolder(folder);
        using var model = LlamaForCausalLM.FromPretrained(folder);
        model.eval();
        using var llama = new LlamaCpp(gguf);
        int[] ids = [.. tokenizer.EncodeContent(Texts[0])];
        double difference = RelativeDifference(OurLogits(model, ids), llama.Logits(ids));
        Assert.True(difference < bound, $"{type}: logits differ by {difference:E2} of their scale, beyond {bound:E2}");
    }

    [Fact]
    public void What_cannot_be_exported_is_named_before_anything_is_written()
    {
        string folder = Folder("llama");
        string gguf = Path.Combine(folder, "model.gguf");
        File.WriteAllText(gguf, "an earlier export");
        string tokenizerJson = Path.Combine(folder, "tokenizer.json");
        var json = JsonNode.Parse(File.ReadAllText(tokenizerJson))!;
        json["model"]!["byte_fallback"] = true;
        File.WriteAllText(tokenizerJson, json.ToJsonString());
        var fallback = Assert.Throws<NotSupportedException>(() => GgufExport.ExportModel(folder, gguf, GgufFileType.Q8_0));
        Assert.Contains("byte fallback", fallback.Message);

        json["model"]!["byte_fallback"] = false;
        json["pre_tokenizer"] = new JsonObject { ["type"] = "Whitespace" };
        File.WriteAllText(tokenizerJson, json.ToJsonString());
        var pre = Assert.Throws<NotSupportedException>(() => GgufExport.ExportModel(folder, gguf));
        Assert.Contains("Whitespace", pre.Message);

        string config = Path.Combine(folder, "config.json");
        var scaled = JsonNode.Parse(File.ReadAllText(config))!;
        scaled["rope_scaling"] = new JsonObject { ["rope_type"] = "linear", ["factor"] = 2.0 };
        scaled["mlp_bias"] = true;
        File.WriteAllText(config, scaled.ToJsonString());
        Assert.Contains("mlp_bias", Assert.Throws<NotSupportedException>(() => GgufExport.ExportModel(folder, gguf)).Message);
        scaled["model_type"] = "gpt2";
        File.WriteAllText(config, scaled.ToJsonString());
        Assert.Contains("does not know model_type 'gpt2'", Assert.Throws<NotSupportedException>(() => GgufExport.ExportModel(folder, gguf)).Message);
        scaled["model_type"] = "gpt_neox";
        File.WriteAllText(config, scaled.ToJsonString());
        Assert.Contains("model_type 'gpt_neox'", Assert.Throws<InvalidDataException>(() => GgufExport.ExportModel(folder, gguf)).Message);

        Assert.Equal("an earlier export", File.ReadAllText(gguf)); // untouched, and no partial file left beside it
        Assert.Equal(["model.gguf"], Directory.GetFiles(folder, "*gguf*").Select(Path.GetFileName));
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("qwen2")]
    public void A_lora_adapter_applied_in_llama_cpp_gives_the_merged_models_logits(string family)
    {
        string folder = Folder(family);
        string adapterFolder = Path.Combine(_models.Root, family + "-adapter");
        using var model = LlamaForCausalLM.FromPretrained(folder);
        LoraAdapters.Attach(model, new LoraOptions { Rank = 4, Alpha = 8, TargetModules = LoraOptions.AllProjections });
        var generator = new TorchSharp.torch.Generator(11);
        using (no_grad())
            foreach (var parameter in LoraAdapters.Parameters(model)) // B starts at zero: give every adapter a real update
                parameter.copy_(randn(parameter.shape, generator: generator).mul(0.2));
        LoraAdapters.Save(model, adapterFolder);
        model.eval();

        string baseGguf = Path.Combine(folder, "base.gguf"), adapterGguf = Path.Combine(adapterFolder, "adapter.gguf");
        GgufExport.ExportModel(folder, baseGguf, GgufFileType.F32);
        GgufExport.ExportAdapter(adapterFolder, folder, adapterGguf);
        int[] ids = [.. ModelTokenizer.FromFolder(folder).EncodeContent(Texts[0])];
        using var llama = new LlamaCpp(baseGguf, adapterGguf);
        float[][] ours = OurLogits(model, ids); // the adapters applied, as the merged model computes
        double difference = RelativeDifference(ours, llama.Logits(ids));
        Assert.True(difference < 1e-4, $"{family}: logits with the adapter differ by {difference:E2} of their scale");
        using var plain = new LlamaCpp(baseGguf);
        Assert.True(RelativeDifference(ours, plain.Logits(ids)) > 1e-2); // the adapter matters
    }

    [Fact]
    public void A_sentencepiece_tokenizer_exports_as_llama_cpps_llama_tokenizer()
    {
        // Llama 2's tokenizer settings (BPE, byte fallback, split digits, dummy prefix), trained for the tokenizer tests.
        var json = TinyModels.ConfigJson();
        (json["vocab_size"], json["hidden_size"], json["intermediate_size"]) = (3000, 64, 96);
        string folder = _models.Folder("spm", json);
        File.Copy(Path.Combine(AppContext.BaseDirectory, "Tokenization", "Fixtures", "sentencepiece-bpe", "tokenizer.model"), Path.Combine(folder, "tokenizer.model"));
        string gguf = Path.Combine(folder, "model.gguf");
        GgufExport.ExportModel(folder, gguf, GgufFileType.F32);

        var tokenizer = ModelTokenizer.FromFolder(folder);
        using var model = LlamaForCausalLM.FromPretrained(folder);
        model.eval();
        using var llama = new LlamaCpp(gguf);
        foreach (string text in new[] { "Licensed under the Apache License, Version 2.0", "x = 12345 + 67; // ünïcödé 🙂 ====", "  leading and trailing  " })
        {
            int[] ours = [.. tokenizer.EncodeContent(text)];
            Assert.Equal(ours, llama.Tokenize(text));
            Assert.True(RelativeDifference(OurLogits(model, ours), llama.Logits(ours)) < 1e-4);
        }
    }

    [Fact]
    public void A_byte_fallback_tokenizer_json_exports_as_llama_cpps_llama_tokenizer()
    {
        // Mistral-7B's tokenizer.json alone (no tokenizer.model): llama.cpp must give the ids Hugging Face's tokenizers give.
        var json = TinyModels.ConfigJson("mistral");
        (json["vocab_size"], json["hidden_size"], json["intermediate_size"], json["num_hidden_layers"]) = (32000, 32, 32, 1);
        string folder = _models.Folder("mistral-tokenizer", json);
        string fixture = Path.Combine(AppContext.BaseDirectory, "Tokenization", "Fixtures", "mistral-7b");
        foreach (string file in new[] { "tokenizer.json", "tokenizer_config.json" })
            File.Copy(Path.Combine(fixture, file), Path.Combine(folder, file));
        string gguf = Path.Combine(folder, "model.gguf");
        GgufExport.ExportModel(folder, gguf, GgufFileType.F16);

        using var llama = new LlamaCpp(gguf);
        var mismatches = File.ReadLines(Path.Combine(fixture, "expected.jsonl")).Select(line => JsonNode.Parse(line)!)
            .Select(c => (Text: (string)c["text"]!, Expected: c["ids"]!.AsArray().Select(i => (int)i!).ToArray()))
            .Where(c => !c.Expected.SequenceEqual(llama.Tokenize(c.Text))).Select(c => c.Text).ToList();
        Assert.True(mismatches.Count == 0, $"{mismatches.Count} of 119 strings tokenise differently, e.g. '{mismatches.FirstOrDefault()}'");
    }

    [Fact]
    public void Smollms_digit_splitting_is_llama_cpps_smollm_and_an_unknown_type_writes_nothing()
    {
        string folder = Folder("llama", gpt2Style: true);
        string tokenizerJson = Path.Combine(folder, "tokenizer.json");
        var json = JsonNode.Parse(File.ReadAllText(tokenizerJson))!;
        json["pre_tokenizer"] = new JsonObject
        {
            ["type"] = "Sequence",
            ["pretokenizers"] = new JsonArray(new JsonObject { ["type"] = "Digits", ["individual_digits"] = true },
                new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = true }),
        };
        File.WriteAllText(tokenizerJson, json.ToJsonString());
        string gguf = Path.Combine(folder, "smollm.gguf");
        GgufExport.ExportModel(folder, gguf, GgufFileType.F32);
        var tokenizer = ModelTokenizer.FromFolder(folder);
        using (var llama = new LlamaCpp(gguf))
            foreach (string text in new[] { "hello 12345 world", "x=9876543210;y=42" })
                Assert.Equal(tokenizer.EncodeContent(text), llama.Tokenize(text));

        string other = Path.Combine(folder, "other.gguf");
        Assert.Throws<ArgumentOutOfRangeException>(() => GgufExport.ExportModel(folder, other, (GgufFileType)9));
        Assert.False(File.Exists(other));
    }
}
