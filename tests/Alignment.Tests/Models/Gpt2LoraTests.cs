using System.Text.Json.Nodes;
using Alignment.Models;
using static TorchSharp.torch;

namespace Alignment.Tests.Models;

/// <summary>LoRA on GPT-2's Conv1D projections, in PEFT's layout: A [r, in], B [out, r], the base weight [in, out].</summary>
public sealed class Gpt2LoraTests : IDisposable
{
    readonly TinyModels _models = new();
    static readonly Tensor Ids = LoraAdaptersTests.Ids;

    public void Dispose() => _models.Dispose();

    static void Randomize(LlamaForCausalLM model) => LoraAdaptersTests.Randomize(model);

    [Fact]
    public void A_merged_conv1d_adapter_adds_the_transposed_update_and_computes_what_the_adapter_did()
    {
        using var scope = NewDisposeScope();
        using LlamaForCausalLM model = TinyModels.Random(TinyModels.Gpt2ConfigJson());
        Tensor baseline = model.Forward(Ids);
        Tensor weight = model.state_dict()["transformer.h.0.mlp.c_fc.weight"].clone();        // [32, 128]
        LoraAdapters.Attach(model, new LoraOptions { Rank = 3, Alpha = 6, TargetModules = [LoraOptions.AllLinear] });
        Assert.True(model.Forward(Ids).equal(baseline).all().item<bool>());
        Randomize(model);
        var state = model.state_dict();
        Tensor a = state["transformer.h.0.mlp.c_fc.lora_A"].clone(), b = state["transformer.h.0.mlp.c_fc.lora_B"].clone();
        Assert.Equal([3L, 32L], a.shape);
        Assert.Equal([128L, 3L], b.shape);
        Tensor adapted = model.Forward(Ids);

        LoraAdapters.Merge(model);

        // By hand: Conv1D computes x·W, the adapter x·Aᵀ·Bᵀ·α/r, so W gains (B·A)ᵀ·2.
        Tensor expected = weight.add(b.mm(a).t().mul(2.0));
        Assert.True(model.state_dict()["transformer.h.0.mlp.c_fc.weight"].allclose(expected, rtol: 0, atol: 1e-6));
        Assert.True(model.Forward(Ids).allclose(adapted, rtol: 0, atol: 1e-5));
    }

    [Fact]
    public void Adapter_folders_use_peft_names_and_fan_in_fan_out_and_merged_folders_use_gpt2_names()
    {
        using var scope = NewDisposeScope();
        string baseFolder = _models.Folder("gpt2", TinyModels.Gpt2ConfigJson());
        using LlamaForCausalLM model = LlamaForCausalLM.FromPretrained(baseFolder);
        LoraAdapters.Attach(model, new LoraOptions { Rank = 2 });
        Randomize(model);
        Tensor adapted = model.Forward(Ids);

        string adapter = Path.Combine(_models.Root, "adapter");
        LoraAdapters.Save(model, adapter);
        JsonObject config = JsonNode.Parse(File.ReadAllText(Path.Combine(adapter, LoraAdapters.ConfigFileName)))!.AsObject();
        Assert.True(config["fan_in_fan_out"]!.GetValue<bool>());
        Assert.Equal(["c_attn"], config["target_modules"]!.AsArray().Select(t => t!.GetValue<string>()));
        using (var file = SafeTensorsFile.Open(Path.Combine(adapter, LoraAdapters.WeightsFileName)))
        {
            Assert.Equal([2L, 32L], file.Entries["base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"].Shape);
            Assert.Equal([96L, 2L], file.Entries["base_model.model.transformer.h.1.attn.c_attn.lora_B.weight"].Shape);
            Assert.Equal(4, file.Entries.Count);
        }
        using (LlamaForCausalLM fresh = LlamaForCausalLM.FromPretrained(baseFolder))
        {
            LoraAdapters.Load(fresh, adapter);
            Assert.True(fresh.Forward(Ids).allclose(adapted, rtol: 0, atol: 1e-6));
        }

        string merged = Path.Combine(_models.Root, "merged");
        model.SavePretrained(merged);
        using (var checkpoint = SafeTensorsCheckpoint.Open(merged))
            Assert.Equal([32L, 96L], checkpoint.Entries["transformer.h.0.attn.c_attn.weight"].Shape);
        using LlamaForCausalLM reloaded = LlamaForCausalLM.FromPretrained(merged);
        Assert.True(reloaded.Forward(Ids).allclose(adapted, rtol: 0, atol: 1e-5));
    }
}
