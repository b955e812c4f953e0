using Alignment.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Tests.Models;

public sealed class PolicyModelTests
{
    static readonly long[] Tokens = [1, 5, 9, 13, 22, 40, 7];

    /// <summary>The distinct native storages behind a set of tensors (identified by their first byte's address).</summary>
    static int DistinctStorages(IEnumerable<Tensor> tensors)
    {
        var seen = new List<Tensor>();
        foreach (Tensor t in tensors)
            if (!seen.Any(s => LlamaForCausalLMTests.SameStorage(s, t)))
                seen.Add(t);
        return seen.Count;
    }

    static IEnumerable<Tensor> Weights(ICausalLM model) => model switch
    {
        ReferenceModel reference => reference.Model.parameters(),
        LlamaForCausalLM llama => llama.parameters(),
        _ => throw new ArgumentException(),
    };

    [Fact]
    public void With_lora_the_reference_is_the_base_weights_at_no_extra_parameter_memory()
    {
        using var scope = NewDisposeScope();
        using var policy = new PolicyModel(TinyModels.Random(TinyModels.ConfigJson()));
        Tensor ids = tensor(Tokens).unsqueeze(0);
        Tensor baseline = policy.Model.Forward(ids);
        LoraAdapters.Attach(policy.Model, new LoraOptions { Rank = 4 });
        using (no_grad())
            foreach (var p in LoraAdapters.Parameters(policy.Model))
                p.copy_(randn_like(p).mul(0.1));
        using ReferenceModel reference = policy.CreateReference();

        int policyStorages = DistinctStorages(policy.Model.parameters());
        Assert.Equal(policyStorages, DistinctStorages(policy.Model.parameters().Concat(Weights(reference))));

        Tensor referenceOut = reference.Forward(ids);
        Assert.False(referenceOut.requires_grad);
        Assert.True(referenceOut.equal(baseline).all().item<bool>());
        Assert.False(policy.Model.Forward(ids).allclose(baseline, rtol: 0, atol: 1e-4)); // adapters are back on
        Assert.Equal(LoraAdapters.Parameters(policy.Model).Count(), policy.TrainableParameters.Count);
    }

    [Fact]
    public void Without_lora_the_reference_is_a_frozen_copy()
    {
        using var scope = NewDisposeScope();
        using var policy = new PolicyModel(TinyModels.Random(TinyModels.ConfigJson()));
        using ReferenceModel reference = policy.CreateReference();
        int policyStorages = DistinctStorages(policy.Model.parameters());

        Assert.Equal(2 * policyStorages, DistinctStorages(policy.Model.parameters().Concat(Weights(reference))));
        Assert.All(reference.Model.parameters(), p => Assert.False(p.requires_grad));
        Tensor ids = tensor(Tokens).unsqueeze(0);
        Assert.True(reference.Forward(ids).equal(policy.Model.Forward(ids)).all().item<bool>());

        using (no_grad())
            policy.Model.parameters().First().add_(1); // training the policy leaves the copy where it was
        Assert.False(reference.Forward(ids).allclose(policy.Model.Forward(ids), rtol: 0, atol: 1e-4));
    }

    [Fact]
    public void Only_adapters_receive_gradients_when_lora_is_on()
    {
        using var scope = NewDisposeScope();
        using var policy = new PolicyModel(TinyModels.Random(TinyModels.ConfigJson()));
        LoraAdapters.Attach(policy.Model, new LoraOptions { Rank = 2 });
        using (no_grad())
            foreach (var p in LoraAdapters.Parameters(policy.Model))
                p.copy_(randn_like(p).mul(0.1));
        policy.Model.Forward(tensor(Tokens).unsqueeze(0)).sum().backward();
        Assert.All(LoraAdapters.Parameters(policy.Model), p => Assert.NotNull(p.grad));
        Assert.All(policy.Model.parameters().Where(p => !p.requires_grad), p => Assert.Null(p.grad));
    }
}
