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
    public void Several_eos_ids_are_read()
    {
        var json = TinyModels.ConfigJson();
        json["eos_token_id"] = new JsonArray(128001, 128009);
        Assert.Equal([128001L, 128009L], DecoderConfig.FromJson(json).EosTokenIds);
    }

    [Theory]
    [InlineData("model_type", "gpt2", "model_type 'gpt2' is not supported")]
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
