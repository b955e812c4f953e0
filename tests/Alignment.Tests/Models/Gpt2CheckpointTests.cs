using Alignment.Models;
using static TorchSharp.torch;

namespace Alignment.Tests.Models;

/// <summary>GPT-2 folders as the Hub holds them: OpenAI's base-model layout, Conv1D shapes, learned positions.</summary>
public sealed class Gpt2CheckpointTests : IDisposable
{
    readonly TinyModels _models = new();

    public void Dispose() => _models.Dispose();

    [Fact]
    public void The_base_model_layout_with_mask_buffers_loads_and_saves_as_transformers_does()
    {
        using var scope = NewDisposeScope();
        using LlamaForCausalLM original = TinyModels.Random(TinyModels.Gpt2ConfigJson());
        // OpenAI's gpt2 file: "h.0.attn.c_attn.weight", no "transformer." and no lm_head, plus each layer's causal-mask buffers.
        var tensors = original.state_dict().Select(kv => new KeyValuePair<string, Tensor>(kv.Key["transformer.".Length..], kv.Value)).ToList();
        for (int i = 0; i < 2; i++)
        {
            tensors.Add(new($"h.{i}.attn.bias", ones(1, 1, 40, 40).tril()));
            tensors.Add(new($"h.{i}.attn.masked_bias", tensor(-1e4f)));
        }
        string folder = Path.Combine(_models.Root, "openai");
        SafeTensorsCheckpoint.Save(folder, tensors);
        File.WriteAllText(Path.Combine(folder, "config.json"), TinyModels.Gpt2ConfigJson().ToJsonString());

        using var loaded = LlamaForCausalLM.FromPretrained(folder);
        foreach (var (name, value) in original.state_dict())
            Assert.True(value.bytes.SequenceEqual(loaded.state_dict()[name].bytes), name);
        Assert.Equal([32L, 96L], loaded.state_dict()["transformer.h.0.attn.c_attn.weight"].shape); // Conv1D: [in, out]

        string saved = Path.Combine(_models.Root, "saved");
        loaded.SavePretrained(saved);
        using var checkpoint = SafeTensorsCheckpoint.Open(saved);
        Assert.All(checkpoint.Entries.Keys, name => Assert.StartsWith("transformer.", name));
        Assert.DoesNotContain(checkpoint.Entries.Keys, name => name.EndsWith(".attn.bias") || name == "lm_head.weight");
    }

    [Fact]
    public void Missing_and_transposed_tensors_are_all_listed()
    {
        using var scope = NewDisposeScope();
        using LlamaForCausalLM model = TinyModels.Random(TinyModels.Gpt2ConfigJson());
        var tensors = model.state_dict().Where(kv => kv.Key != "transformer.ln_f.bias")
            .Select(kv => kv.Key == "transformer.h.1.attn.c_attn.weight" ? new KeyValuePair<string, Tensor>(kv.Key, kv.Value.t().contiguous()) : kv)
            .ToList();
        string folder = Path.Combine(_models.Root, "broken");
        SafeTensorsCheckpoint.Save(folder, tensors);
        File.WriteAllText(Path.Combine(folder, "config.json"), TinyModels.Gpt2ConfigJson().ToJsonString());

        string message = Assert.Throws<InvalidDataException>(() => LlamaForCausalLM.FromPretrained(folder)).Message;
        Assert.Contains("missing: transformer.ln_f.bias", message);
        Assert.Contains("wrong shape: transformer.h.1.attn.c_attn.weight is [96, 32]", message);
        Assert.Contains("the model expects [32, 96]", message);
    }

    [Fact]
    public void Positions_past_n_positions_are_refused_before_the_position_table_is_indexed()
    {
        using var scope = NewDisposeScope();
        using LlamaForCausalLM model = TinyModels.Random(TinyModels.Gpt2ConfigJson());
        Tensor ids = zeros(1, 41, ScalarType.Int64);
        Assert.Contains("max_position_embeddings (40)", Assert.Throws<ArgumentException>(() => model.Forward(ids)).Message);
        Assert.Equal([1L, 40L, 32L], model.Forward(ids.narrow(1, 0, 40)).shape);
    }
}
