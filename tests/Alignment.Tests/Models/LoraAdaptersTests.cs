using Alignment.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Tests.Models;

public sealed class LoraAdaptersTests : IDisposable
{
    readonly TinyModels _models = new();
    internal static readonly Tensor Ids = tensor(new long[] { 1, 5, 9, 13, 22, 40, 7 }).unsqueeze(0).DetachFromDisposeScope();

    public void Dispose() => _models.Dispose();

    /// <summary>Every adapter weight from N(0, 0.1²), so that adapters change the output.</summary>
    internal static void Randomize(LlamaForCausalLM model, long seed = 5)
    {
        torch.manual_seed(seed);
        using var noGrad = no_grad();
        foreach (var parameter in LoraAdapters.Parameters(model))
            parameter.copy_(randn_like(parameter).mul(0.1));
    }

    [Fact]
    public void Adapters_with_zero_B_leave_the_model_unchanged_and_only_they_train()
    {
        using var scope = NewDisposeScope();
        using LlamaForCausalLM model = TinyModels.Random(TinyModels.ConfigJson());
        Tensor before = model.Forward(Ids);
        IReadOnlyList<string> attached = LoraAdapters.Attach(model, new LoraOptions { Rank = 4, Alpha = 8, TargetModules = [LoraOptions.AllLinear] });

        Assert.Equal(2 * 7, attached.Count);
        Assert.True(model.Forward(Ids).equal(before).all().item<bool>());
        Assert.Equal(2 * 7 * 2, model.parameters().Count(p => p.requires_grad));
        Assert.All(LoraAdapters.Parameters(model), p => Assert.True(p.requires_grad));
    }

    [Theory]
    [InlineData("llama", "model.layers.0.self_attn.q_proj,model.layers.0.self_attn.v_proj,model.layers.1.self_attn.q_proj,model.layers.1.self_attn.v_proj")]
    [InlineData("qwen3", "model.layers.0.self_attn.q_proj,model.layers.0.self_attn.v_proj,model.layers.1.self_attn.q_proj,model.layers.1.self_attn.v_proj")]
    [InlineData("gpt2", "transformer.h.0.attn.c_attn,transformer.h.1.attn.c_attn")]
    public void Without_targets_each_family_gets_peft_defaults(string architecture, string expected)
    {
        using var scope = NewDisposeScope();
        using LlamaForCausalLM model = TinyModels.Random(LlamaForCausalLMTests.ConfigFor(architecture));
        Assert.Equal(expected.Split(','), LoraAdapters.Attach(model, new LoraOptions { Rank = 2 }));
        Assert.Equal(expected.Split(',').Select(n => n[(n.LastIndexOf('.') + 1)..]).Distinct(), model.LoraOptions!.TargetModules!);
    }

    [Fact]
    public void Merged_adapters_compute_what_unmerged_ones_do()
    {
        using var scope = NewDisposeScope();
        using LlamaForCausalLM model = TinyModels.Random(TinyModels.ConfigJson());
        LoraAdapters.Attach(model, new LoraOptions { Rank = 4, Alpha = 8, TargetModules = ["q_proj", "v_proj", "down_proj"] });
        Randomize(model);
        Tensor adapted = model.Forward(Ids);

        LoraAdapters.Merge(model);

        Assert.False(LoraAdapters.HasAdapters(model));
        Assert.DoesNotContain(model.state_dict().Keys, k => k.Contains("lora"));
        Assert.True(model.Forward(Ids).allclose(adapted, rtol: 0, atol: 1e-5));
    }

    [Fact]
    public void Disabled_adapters_give_the_base_model()
    {
        using var scope = NewDisposeScope();
        using LlamaForCausalLM model = TinyModels.Random(TinyModels.ConfigJson());
        Tensor baseline = model.Forward(Ids);
        LoraAdapters.Attach(model, new LoraOptions());
        Randomize(model);
        Assert.False(model.Forward(Ids).allclose(baseline, rtol: 0, atol: 1e-4));
        LoraAdapters.SetEnabled(model, false);
        Assert.True(model.Forward(Ids).equal(baseline).all().item<bool>());
    }

    [Fact]
    public void A_saved_model_folder_has_the_adapters_merged_in()
    {
        using var scope = NewDisposeScope();
        using LlamaForCausalLM model = LlamaForCausalLM.FromPretrained(_models.Folder("base", TinyModels.ConfigJson()));
        LoraAdapters.Attach(model, new LoraOptions { Rank = 2 });
        Randomize(model);
        Tensor adapted = model.Forward(Ids);
        string merged = Path.Combine(_models.Root, "merged");
        model.SavePretrained(merged);

        using var reloaded = LlamaForCausalLM.FromPretrained(merged);
        Assert.True(reloaded.Forward(Ids).allclose(adapted, rtol: 0, atol: 1e-5));
        Assert.True(LoraAdapters.HasAdapters(model)); // saving does not merge the live model
    }

    [Fact]
    public void An_adapter_folder_loads_back_onto_the_base_model()
    {
        using var scope = NewDisposeScope();
        string baseFolder = _models.Folder("base", TinyModels.ConfigJson());
        using LlamaForCausalLM model = LlamaForCausalLM.FromPretrained(baseFolder);
        LoraAdapters.Attach(model, new LoraOptions { Rank = 3, Alpha = 6, TargetModules = ["k_proj", "up_proj"] });
        Randomize(model);
        Tensor adapted = model.Forward(Ids);
        string adapter = Path.Combine(_models.Root, "adapter");
        LoraAdapters.Save(model, adapter);

        using LlamaForCausalLM fresh = LlamaForCausalLM.FromPretrained(baseFolder);
        LoraAdapters.Load(fresh, adapter);
        Assert.True(fresh.Forward(Ids).allclose(adapted, rtol: 0, atol: 1e-6));
        Assert.Contains("base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight",
            SafeTensorsFile.Open(Path.Combine(adapter, LoraAdapters.WeightsFileName)).Entries.Keys);
    }

    [Fact]
    public void Lora_dropout_follows_train_and_eval_modes()
    {
        using var scope = NewDisposeScope();
        using LlamaForCausalLM model = TinyModels.Random(TinyModels.ConfigJson());
        LoraAdapters.Attach(model, new LoraOptions { Rank = 4, Dropout = 0.5 });
        Randomize(model);
        model.eval();
        Assert.True(model.Forward(Ids).equal(model.Forward(Ids)).all().item<bool>());
        model.train();
        Assert.False(model.Forward(Ids).equal(model.Forward(Ids)).all().item<bool>());
    }

    [Fact]
    public void Bad_options_are_named()
    {
        Assert.Contains("lora rank", Assert.Throws<ArgumentException>(() => new LoraOptions { Rank = 0 }.Validate()).Message);
        using LlamaForCausalLM model = TinyModels.Random(TinyModels.ConfigJson());
        Assert.Contains("this llama model has: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj",
            Assert.Throws<ArgumentException>(() => LoraAdapters.Attach(model, new LoraOptions { TargetModules = ["query"] })).Message);
        using LlamaForCausalLM phi3 = TinyModels.Random(TinyModels.Phi3ConfigJson());
        Assert.Contains("PEFT has no default target_modules for model_type 'phi3'", // as PEFT: name them
            Assert.Throws<ArgumentException>(() => LoraAdapters.Attach(phi3, new LoraOptions())).Message);
        Assert.Equal(8, LoraAdapters.Attach(phi3, new LoraOptions { TargetModules = [LoraOptions.AllLinear] }).Count); // qkv, o, gate_up, down × 2
        using LlamaForCausalLM gpt2 = TinyModels.Random(TinyModels.Gpt2ConfigJson());
        Assert.Contains("this gpt2 model has: c_attn, c_proj, c_fc",
            Assert.Throws<ArgumentException>(() => LoraAdapters.Attach(gpt2, new LoraOptions { TargetModules = ["q_proj"] })).Message);
    }
}
