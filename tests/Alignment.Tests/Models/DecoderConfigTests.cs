using System.Text.Json.Nodes;
using Alignment.Models;

namespace Alignment.Tests.Models;

public sealed class DecoderConfigTests
{
    [Fact]
    public void Llama_defaults_follow_transformers()
    {
        var json = TinyModels.ConfigJson();
        json.Remove("num_key_value_heads");
        var config = DecoderConfig.FromJson(json);
        Assert.Equal(4, config.NumKeyValueHeads);
        Assert.Equal(8, config.HeadDim);
        Assert.False(config.QkvBias);
        Assert.Null(config.SlidingWindow);
        Assert.Equal([2L], config.EosTokenIds);
    }

    [Fact]
    public void Qwen2_has_qkv_biases_and_mistral_a_sliding_window()
    {
        Assert.True(DecoderConfig.FromJson(TinyModels.ConfigJson("qwen2")).QkvBias);
        Assert.False(DecoderConfig.FromJson(TinyModels.ConfigJson("qwen2")).OutputBias);
        var mistral = TinyModels.ConfigJson("mistral");
        mistral["sliding_window"] = 4096;
        Assert.Equal(4096, DecoderConfig.FromJson(mistral).SlidingWindow);
    }

    [Fact]
    public void Gpt2_configs_are_read_with_transformers_defaults()
    {
        var config = DecoderConfig.FromJson(TinyModels.Gpt2ConfigJson());
        Assert.Equal((32, 2, 4, 4, 8), (config.HiddenSize, config.NumHiddenLayers, config.NumAttentionHeads, config.NumKeyValueHeads, config.HeadDim));
        Assert.Equal(128, config.IntermediateSize);           // n_inner null → 4 · n_embd
        Assert.Equal(40, config.MaxPositionEmbeddings);       // n_positions
        Assert.True(config.TieWordEmbeddings);                // GPT2Config leaves tie_word_embeddings at PretrainedConfig's true
        Assert.Equal(1e-5, config.RmsNormEps);                // layer_norm_epsilon
        Assert.Equal("gelu_new", config.HiddenAct);
        Assert.True(config.QkvBias && config.OutputBias && config.MlpBias);
        // wte 64·32 + wpe 40·32 + 2 layers · (2 LayerNorms 128 + c_attn 32·96+96 + c_proj 32·32+32 + c_fc 32·128+128 + c_proj 128·32+32) + ln_f 64
        Assert.Equal(64 * 32 + 40 * 32 + 2 * (128 + 3168 + 1056 + 4224 + 4128) + 64, config.ParameterCount);

        var named = TinyModels.Gpt2ConfigJson();
        named.Remove("n_embd");
        named["hidden_size"] = 48;                             // attribute_map's names work too
        named["n_inner"] = 100;
        named["tie_word_embeddings"] = false;
        config = DecoderConfig.FromJson(named);
        Assert.Equal((48, 100, false), (config.HiddenSize, config.IntermediateSize, config.TieWordEmbeddings));
    }

    [Fact]
    public void Gemma_configs_take_each_versions_transformers_defaults()
    {
        var gemma2 = TinyModels.GemmaConfigJson();
        foreach (string key in new[] { "attn_logit_softcapping", "final_logit_softcapping", "sliding_window", "query_pre_attn_scalar", "head_dim" })
            gemma2.Remove(key);
        gemma2["num_hidden_layers"] = 4;
        var config = DecoderConfig.FromJson(gemma2);
        Assert.Equal((50.0, 30.0, 4096, 256.0, 256), (config.AttentionLogitSoftcapping, config.FinalLogitSoftcapping, config.SlidingWindow, config.QueryPreAttentionScalar, config.HeadDim));
        Assert.Equal(["sliding_attention", "full_attention", "sliding_attention", "full_attention"], config.LayerTypes!);
        Assert.True(config.TieWordEmbeddings);
        Assert.Equal("gelu_pytorch_tanh", config.HiddenAct);

        gemma2["final_logit_softcapping"] = null; // an explicit null turns it off
        Assert.Null(DecoderConfig.FromJson(gemma2).FinalLogitSoftcapping);

        var gemma3 = TinyModels.GemmaConfigJson("gemma3_text");
        foreach (string key in new[] { "sliding_window_pattern", "rope_theta", "rope_local_base_freq" })
            gemma3.Remove(key);
        gemma3["num_hidden_layers"] = 7;
        config = DecoderConfig.FromJson(gemma3);
        Assert.Equal([true, true, true, true, true, false, true], config.LayerTypes!.Select(t => t == "sliding_attention"));
        Assert.Equal((1_000_000.0, 10_000.0, true), (config.RopeTheta, config.RopeLocalBaseFreq!.Value, config.QkNorm));
        Assert.Null(config.AttentionLogitSoftcapping);

        var gemma1 = DecoderConfig.FromJson(TinyModels.GemmaConfigJson("gemma").With("hidden_act", "gelu"));
        Assert.Equal(("gelu_pytorch_tanh", (int?)null, (IReadOnlyList<string>?)null), (gemma1.HiddenAct, gemma1.SlidingWindow, gemma1.LayerTypes));
    }

    [Fact]
    public void Phi3_longrope_takes_its_factor_from_the_original_length()
    {
        var config = DecoderConfig.FromJson(TinyModels.Phi3ConfigJson());
        Assert.Equal(("longrope", 4.0, 8L), (config.RopeScaling!.Type, config.RopeScaling.Factor, config.RopeScaling.OriginalMaxPositionEmbeddings));
        Assert.Equal([2.0, 5.0], config.RopeScaling.LongFactor!);
        Assert.Equal((0.5, 4), (config.PartialRotaryFactor, config.RotaryDim));
        var su = TinyModels.Phi3ConfigJson();
        su["rope_scaling"]!["type"] = "su"; // the name the first Phi-3 checkpoints used
        Assert.Equal("longrope", DecoderConfig.FromJson(su).RopeScaling!.Type);
        Assert.Equal(4, DecoderConfig.FromJson(TinyModels.Phi3ConfigJson(longRope: false)).SlidingWindow);
    }

    [Theory]
    [InlineData("short", "rope_scaling \"short_factor\" has 3 entries; the model's 4 rotary dimensions need 2")]
    [InlineData("partial", "\"partial_rotary_factor\" must be in (0, 1]")]
    [InlineData("odd", "must give an even number of rotary dimensions")]
    public void Bad_phi3_configs_are_named(string what, string expected)
    {
        var json = TinyModels.Phi3ConfigJson();
        if (what == "short")
            json["rope_scaling"]!["short_factor"] = new JsonArray(1.0, 1.0, 1.0);
        else
            json["partial_rotary_factor"] = what == "partial" ? 1.5 : 0.375; // 8 · 0.375 = 3
        Assert.Contains(expected, Assert.Throws<InvalidDataException>(() => DecoderConfig.FromJson(json)).Message);
    }

    [Theory]
    [InlineData("hidden_activation", "relu", "hidden_activation 'relu' is not supported")]
    [InlineData("attention_bias", true, "attention biases")]
    [InlineData("layer_types", "three", "\"layer_types\" must list 3 entries")]
    public void Bad_gemma_configs_are_named(string field, object value, string expected)
    {
        var json = TinyModels.GemmaConfigJson();
        json[field] = value switch
        {
            bool flag => flag,
            "three" => new JsonArray("sliding_attention", "full_attention"),
            string s => s,
            _ => throw new ArgumentException(),
        };
        Assert.Contains(expected, Assert.Throws<InvalidDataException>(() => DecoderConfig.FromJson(json)).Message);
    }

    [Theory]
    [InlineData("activation_function", "relu", "activation_function 'relu' is not supported; supported: gelu_new, gelu_pytorch_tanh, gelu")]
    [InlineData("n_head", 5, "n_embd 32 is not divisible by n_head 5")]
    [InlineData("n_layer", 0, "\"n_layer\" must be a positive integer")]
    public void Bad_gpt2_configs_are_named(string field, object value, string expected)
    {
        var json = TinyModels.Gpt2ConfigJson();
        json[field] = value switch { int i => i, string s => s, _ => throw new ArgumentException() };
        Assert.Contains(expected, Assert.Throws<InvalidDataException>(() => DecoderConfig.FromJson(json)).Message);
    }

    [Fact]
    public void Several_eos_ids_are_read()
    {
        var json = TinyModels.ConfigJson();
        json["eos_token_id"] = new JsonArray(128001, 128009);
        Assert.Equal([128001L, 128009L], DecoderConfig.FromJson(json).EosTokenIds);
    }

    [Theory]
    [InlineData("model_type", "gpt_neox", "model_type 'gpt_neox' is not supported; supported: gemma, gemma2, gemma3_text, gpt2, llama")]
    [InlineData("hidden_act", "gelu", "hidden_act 'gelu'")]
    [InlineData("hidden_size", null, "\"hidden_size\" must be a positive integer")]
    [InlineData("num_key_value_heads", 3, "not a multiple")]
    public void Unsupported_or_inconsistent_configs_are_named(string field, object? value, string expected)
    {
        var json = TinyModels.ConfigJson();
        json[field] = value switch { null => null, int i => i, string s => s, _ => throw new ArgumentException() };
        var error = Assert.Throws<InvalidDataException>(() => DecoderConfig.FromJson(json));
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void Unknown_rope_scaling_types_are_rejected()
    {
        var json = TinyModels.ConfigJson(ropeScaling: new JsonObject { ["rope_type"] = "yarn", ["factor"] = 4.0 });
        Assert.Contains("yarn", Assert.Throws<InvalidDataException>(() => DecoderConfig.FromJson(json)).Message);
    }

    [Fact]
    public void Loading_names_the_file()
    {
        string path = Path.Combine(Path.GetTempPath(), $"bad-config-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, "{\"model_type\": \"bert\"}");
        try
        {
            Assert.Contains(path, Assert.Throws<InvalidDataException>(() => DecoderConfig.Load(path)).Message);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
