using Alignment.Models.Decoder;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Alignment.Models;

/// <summary>
/// The model being aligned. With LoRA adapters attached only the adapters train, and <see cref="CreateReference"/>
/// returns the same base weights with the adapters switched off; otherwise every weight trains and the reference is a
/// frozen copy.
/// </summary>
/// <remarks>Owns <see cref="Model"/> and disposes it.</remarks>
public sealed class PolicyModel : IDisposable
{
    /// <summary>Wraps a model (which this object then owns).</summary>
    public PolicyModel(LlamaForCausalLM model) => Model = model ?? throw new ArgumentNullException(nameof(model));

    /// <summary>The underlying decoder.</summary>
    public LlamaForCausalLM Model { get; }

    /// <summary>Whether the policy trains LoRA adapters rather than all weights.</summary>
    public bool UsesLora => LoraAdapters.HasAdapters(Model);

    /// <summary>The parameters an optimizer should update: the adapters with LoRA, every trainable weight without.</summary>
    public IReadOnlyList<Parameter> TrainableParameters =>
        UsesLora ? LoraAdapters.Parameters(Model).ToList() : Model.parameters().Where(p => p.requires_grad).ToList();

    /// <summary>
    /// The reference model: with LoRA, a view of the same base weights with adapters disabled (no extra weights);
    /// otherwise a frozen copy of the current weights.
    /// </summary>
    public ReferenceModel CreateReference() => UsesLora ? ReferenceModel.SharingBaseOf(Model) : ReferenceModel.FrozenCopyOf(Model);

    /// <inheritdoc />
    public void Dispose() => Model.Dispose();
}

/// <summary>
/// The frozen model that preference losses measure the policy against. It never receives gradients: every forward
/// runs under no-grad.
/// </summary>
public sealed class ReferenceModel : ICausalLM, IDisposable
{
    readonly LlamaForCausalLM _model;
    readonly bool _ownsModel;
    readonly bool _disableAdapters;

    ReferenceModel(LlamaForCausalLM model, bool ownsModel, bool disableAdapters)
    {
        _model = model;
        _ownsModel = ownsModel;
        _disableAdapters = disableAdapters;
    }

    /// <summary>The policy's own base weights with its LoRA adapters switched off during each forward.</summary>
    public static ReferenceModel SharingBaseOf(LlamaForCausalLM policy) => new(policy, ownsModel: false, disableAdapters: true);

    /// <summary>A separately loaded model (for example <c>--reference FOLDER</c>) as the reference; it is frozen and owned by the result.</summary>
    public static ReferenceModel Own(LlamaForCausalLM model)
    {
        ArgumentNullException.ThrowIfNull(model);
        foreach (var parameter in model.parameters())
            parameter.requires_grad = false;
        model.eval();
        return new ReferenceModel(model, ownsModel: true, disableAdapters: false);
    }

    /// <summary>A frozen copy of the model's current weights, same dtype and device.</summary>
    public static ReferenceModel FrozenCopyOf(LlamaForCausalLM policy)
    {
        var copy = new LlamaForCausalLM(policy.Config, policy.DType);
        copy.to(policy.Device);
        using (no_grad())
        {
            var source = policy.state_dict().Where(kv => !kv.Key.Contains(".lora_", StringComparison.Ordinal)).ToDictionary(kv => kv.Key, kv => kv.Value);
            foreach (var (name, target) in copy.state_dict())
                target.copy_(source[name]);
        }
        foreach (var parameter in copy.parameters())
            parameter.requires_grad = false;
        copy.eval();
        return new ReferenceModel(copy, ownsModel: true, disableAdapters: false);
    }

    /// <summary>Whether the reference is the policy's own base weights (LoRA adapters off) rather than a model of its own.</summary>
    internal bool SharesPolicyWeights => _disableAdapters;

    /// <summary>The decoder whose weights the reference uses (shared with the policy when it shares the base).</summary>
    public LlamaForCausalLM Model => _model;

    /// <inheritdoc />
    public DecoderConfig Config => _model.Config;

    /// <inheritdoc />
    public Tensor LmHeadWeight => _model.LmHeadWeight;

    /// <inheritdoc />
    public Device Device => _model.Device;

    /// <inheritdoc />
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? positionIds = null, KvCache? cache = null)
    {
        using var noGrad = no_grad();
        if (!_disableAdapters)
            return _model.Forward(inputIds, attentionMask, positionIds, cache);
        var enabled = _model.Projections.Where(p => p.Projection.HasLora && p.Projection.LoraEnabled).Select(p => p.Projection).ToList();
        enabled.ForEach(p => p.LoraEnabled = false);
        try
        {
            return _model.Forward(inputIds, attentionMask, positionIds, cache);
        }
        finally
        {
            enabled.ForEach(p => p.LoraEnabled = true);
        }
    }

    /// <inheritdoc />
    public Tensor Logits(Tensor hidden)
    {
        using var noGrad = no_grad();
        return _model.Logits(hidden);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsModel)
            _model.Dispose();
    }
}
