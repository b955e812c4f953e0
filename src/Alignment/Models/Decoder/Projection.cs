using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Alignment.Models.Decoder;

/// <summary>
/// A linear projection (<c>weight</c> [out, in], optional <c>bias</c>) that can carry a LoRA adapter
/// (<c>lora_A</c> [r, in], <c>lora_B</c> [out, r], scale α/r) that can be switched off or merged. GPT-2's
/// <c>Conv1D</c> is the same projection with its weight stored transposed, [in, out] (PEFT's <c>fan_in_fan_out</c>);
/// its adapter keeps the shapes above.
/// </summary>
internal sealed class Projection : nn.Module<Tensor, Tensor>
{
    private Parameter weight;
    private Parameter? bias;
    private Parameter? lora_A;
    private Parameter? lora_B;
    private Dropout? _loraDropout;
    private double _loraScale;

    /// <param name="name">Module name.</param>
    /// <param name="inFeatures">Input width.</param>
    /// <param name="outFeatures">Output width.</param>
    /// <param name="hasBias">Whether a bias is added.</param>
    /// <param name="dtype">Parameter dtype.</param>
    /// <param name="fanInFanOut">Store the weight [in, out], as GPT-2's <c>Conv1D</c> does.</param>
    internal Projection(string name, long inFeatures, long outFeatures, bool hasBias, ScalarType dtype = ScalarType.Float32, bool fanInFanOut = false)
        : base(name)
    {
        FanInFanOut = fanInFanOut;
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        if (fanInFanOut)
        {
            weight = new Parameter(empty(inFeatures, outFeatures, dtype));
            using (no_grad())
                weight.normal_(0, 0.02); // transformers' Conv1D initialisation
        }
        else
        {
            weight = new Parameter(empty(outFeatures, inFeatures, dtype));
            nn.init.kaiming_uniform_(weight, Math.Sqrt(5));
        }
        if (hasBias)
            bias = new Parameter(zeros(outFeatures, dtype));
        RegisterComponents();
    }

    /// <summary>Base weight as stored: [out, in], or [in, out] when <see cref="FanInFanOut"/>.</summary>
    public Parameter Weight => weight;

    /// <summary>Whether the weight is stored [in, out] (GPT-2's <c>Conv1D</c>).</summary>
    public bool FanInFanOut { get; }

    /// <summary>Input width.</summary>
    public long InFeatures { get; }

    /// <summary>Output width.</summary>
    public long OutFeatures { get; }

    /// <summary>[out] bias, or null.</summary>
    public Parameter? Bias => bias;

    /// <summary>Whether a LoRA adapter is attached.</summary>
    public bool HasLora => lora_A is not null;

    /// <summary>Whether the attached adapter takes part in the forward pass.</summary>
    public bool LoraEnabled { get; set; }

    /// <summary>[r, in] LoRA down-projection, or null.</summary>
    public Parameter? LoraA => lora_A;

    /// <summary>[out, r] LoRA up-projection (zero-initialised), or null.</summary>
    public Parameter? LoraB => lora_B;

    /// <summary>The adapter's scale α / r.</summary>
    public double LoraScale => _loraScale;

    /// <summary>Attaches a LoRA adapter: A Kaiming-uniform, B zero, so the projection is unchanged until B trains.</summary>
    internal void AttachLora(int rank, double alpha, double dropout)
    {
        if (HasLora)
            throw new InvalidOperationException("A LoRA adapter is already attached to this projection.");
        var options = (weight.dtype, weight.device);
        lora_A = new Parameter(empty(rank, InFeatures, options.dtype, options.device));
        nn.init.kaiming_uniform_(lora_A, Math.Sqrt(5));
        lora_B = new Parameter(zeros(OutFeatures, rank, options.dtype, options.device));
        _loraScale = alpha / rank;
        _loraDropout = dropout > 0 ? nn.Dropout(dropout) : null;
        LoraEnabled = true;
        // RegisterComponents() registers fields once, at construction; adapters come later, so register them by name.
        register_parameter("lora_A", lora_A);
        register_parameter("lora_B", lora_B);
        if (_loraDropout is not null)
            register_module("lora_dropout", _loraDropout); // so that train()/eval() reach it
    }

    /// <summary>Adds <c>scale · B·A</c> into the base weight and removes the adapter.</summary>
    internal void MergeLora()
    {
        if (!HasLora)
            return;
        using (no_grad())
        {
            using Tensor delta = Delta();
            weight.add_(delta);
        }
        RemoveLora();
    }

    /// <summary>The adapter's update <c>scale · B·A</c> in the weight's dtype and stored layout (transposed for Conv1D).</summary>
    internal Tensor Delta()
    {
        using var scope = NewDisposeScope();
        Tensor delta = lora_B!.mm(lora_A!).mul(_loraScale).to_type(weight.dtype);
        return (FanInFanOut ? delta.t().contiguous() : delta).MoveToOuterDisposeScope();
    }

    /// <summary>Detaches the adapter without merging it.</summary>
    internal void RemoveLora()
    {
        if (lora_A is null)
            return;
        lora_A.Dispose();
        lora_B!.Dispose();
        lora_A = null;
        lora_B = null;
        _loraDropout = null;
        LoraEnabled = false;
        // Unregister: TorchSharp keeps registered parameters in a dictionary keyed by field name.
        _internal_params.Remove("lora_A");
        _internal_params.Remove("lora_B");
        if (_internal_submodules.ContainsKey("lora_dropout"))
            _internal_submodules.Remove("lora_dropout");
    }

    /// <param name="input">[..., in]</param>
    /// <returns>[..., out]</returns>
    /// <remarks>The weights are used in the input's dtype (autocast): a float32 weight meets bfloat16 activations as a
    /// bfloat16 copy whose gradient flows back to it in float32.</remarks>
    public override Tensor forward(Tensor input)
    {
        Tensor stored = weight.As(input);
        Tensor output = F.linear(input, FanInFanOut ? stored.t() : stored, bias?.As(input));
        if (lora_A is null || !LoraEnabled)
            return output;
        Tensor x = _loraDropout is null ? input : _loraDropout.call(input);
        Tensor update = F.linear(F.linear(x, lora_A.As(input)), lora_B!.As(input));
        return output.add(update.mul(_loraScale));
    }
}
