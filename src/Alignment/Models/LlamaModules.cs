using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Alignment.Models;

// Field names are the Hugging Face parameter names: TorchSharp registers a module's fields under their own names, so
// the state dict reads model.layers.0.self_attn.q_proj.weight exactly as in a transformers checkpoint.
#pragma warning disable IDE1006 // naming: snake_case fields mirror Hugging Face names

/// <summary>
/// A linear projection (<c>weight</c> [out, in], optional <c>bias</c>) that can carry a LoRA adapter
/// (<c>lora_A</c> [r, in], <c>lora_B</c> [out, r], scale α/r) that can be switched off or merged.
/// </summary>
internal sealed class Projection : nn.Module<Tensor, Tensor>
{
    private Parameter weight;
    private Parameter? bias;
    private Parameter? lora_A;
    private Parameter? lora_B;
    private Dropout? _loraDropout;
    private double _loraScale;

    internal Projection(string name, long inFeatures, long outFeatures, bool hasBias, ScalarType dtype = ScalarType.Float32) : base(name)
    {
        weight = new Parameter(empty(outFeatures, inFeatures, dtype));
        nn.init.kaiming_uniform_(weight, Math.Sqrt(5));
        if (hasBias)
            bias = new Parameter(zeros(outFeatures, dtype));
        RegisterComponents();
    }

    /// <summary>[out, in] base weight.</summary>
    public Parameter Weight => weight;

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
        lora_A = new Parameter(empty(rank, weight.shape[1], options.dtype, options.device));
        nn.init.kaiming_uniform_(lora_A, Math.Sqrt(5));
        lora_B = new Parameter(zeros(weight.shape[0], rank, options.dtype, options.device));
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
            using Tensor delta = lora_B!.mm(lora_A!).mul(_loraScale);
            weight.add_(delta.to_type(weight.dtype));
        }
        RemoveLora();
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
    public override Tensor forward(Tensor input)
    {
        Tensor output = F.linear(input, weight, bias);
        if (lora_A is null || !LoraEnabled)
            return output;
        Tensor x = _loraDropout is null ? input : _loraDropout.call(input);
        Tensor update = F.linear(F.linear(x, lora_A), lora_B!);
        return output.add(update.mul(_loraScale));
    }
}

/// <summary>Root-mean-square layer norm, computed in float32 and cast back before the weight, as transformers does.</summary>
internal sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private Parameter weight;
    private readonly double _eps;

    public RmsNorm(string name, long size, double eps, ScalarType dtype) : base(name)
    {
        weight = new Parameter(ones(size, dtype));
        _eps = eps;
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        ScalarType dtype = input.dtype;
        Tensor x = input.to_type(ScalarType.Float32);
        Tensor variance = x.square().mean([-1], keepdim: true);
        Tensor normed = x.mul(variance.add(_eps).rsqrt()).to_type(dtype);
        return weight.mul(normed).MoveToOuterDisposeScope();
    }
}

/// <summary>Rotary position embeddings, with the inverse frequencies computed as transformers computes them.</summary>
internal sealed class RotaryEmbedding
{
    private readonly Tensor _inverseFrequencies; // [hd/2] float32, CPU
    private readonly Dictionary<string, Tensor> _perDevice = new();

    public RotaryEmbedding(DecoderConfig config)
    {
        using var scope = NewDisposeScope();
        int dim = config.HeadDim;
        Tensor exponents = arange(0, dim, 2, dtype: ScalarType.Int64).to_type(ScalarType.Float32).div(dim);
        Tensor inverse = pow(tensor((float)config.RopeTheta), exponents).reciprocal();
        if (config.RopeScaling is { } scaling)
            inverse = Scale(inverse, scaling);
        _inverseFrequencies = inverse.MoveToOuterDisposeScope().DetachFromDisposeScope();
    }

    /// <summary>cos and sin [B, 1, T, hd] for positions [B, T], in <paramref name="dtype"/>.</summary>
    public (Tensor Cos, Tensor Sin) Angles(Tensor positions, ScalarType dtype)
    {
        string key = positions.device.ToString();
        if (!_perDevice.TryGetValue(key, out Tensor? inverse))
            _perDevice[key] = inverse = _inverseFrequencies.to(positions.device).DetachFromDisposeScope();
        Tensor frequencies = positions.to_type(ScalarType.Float32).unsqueeze(-1).mul(inverse); // [B, T, hd/2]
        Tensor angles = cat([frequencies, frequencies], -1).unsqueeze(1);                        // [B, 1, T, hd]
        return (angles.cos().to_type(dtype), angles.sin().to_type(dtype));
    }

    /// <summary>x·cos + rotate_half(x)·sin, rotate_half(x) = [−x₂, x₁].</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        long half = x.shape[^1] / 2;
        Tensor rotated = cat([x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)], -1);
        return x.mul(cos).add(rotated.mul(sin));
    }

    static Tensor Scale(Tensor inverse, RopeScaling scaling)
    {
        if (scaling.Type == "linear")
            return inverse.div(scaling.Factor);
        // Llama 3: long wavelengths slowed by the factor, short ones kept, the band between interpolated.
        double lowWavelength = scaling.OriginalMaxPositionEmbeddings / scaling.LowFreqFactor;
        double highWavelength = scaling.OriginalMaxPositionEmbeddings / scaling.HighFreqFactor;
        Tensor wavelength = inverse.reciprocal().mul(2 * Math.PI);
        Tensor scaled = inverse.div(scaling.Factor).where(wavelength.gt(lowWavelength), inverse);
        Tensor smooth = wavelength.reciprocal().mul(scaling.OriginalMaxPositionEmbeddings).sub(scaling.LowFreqFactor)
            .div(scaling.HighFreqFactor - scaling.LowFreqFactor);
        Tensor smoothed = smooth.neg().add(1).mul(scaled).div(scaling.Factor).add(smooth.mul(scaled));
        Tensor medium = wavelength.lt(highWavelength).logical_not().logical_and(wavelength.gt(lowWavelength).logical_not());
        return smoothed.where(medium, scaled);
    }
}

/// <summary>Grouped-query self-attention with rotary embeddings and an optional KV cache.</summary>
internal sealed class LlamaAttention : nn.Module
{
    private Projection q_proj, k_proj, v_proj, o_proj;
    private readonly int _heads, _kvHeads, _headDim;

    public LlamaAttention(string name, DecoderConfig c, ScalarType dtype) : base(name)
    {
        _heads = c.NumAttentionHeads;
        _kvHeads = c.NumKeyValueHeads;
        _headDim = c.HeadDim;
        q_proj = new Projection("q_proj", c.HiddenSize, (long)_heads * _headDim, c.QkvBias, dtype);
        k_proj = new Projection("k_proj", c.HiddenSize, (long)_kvHeads * _headDim, c.QkvBias, dtype);
        v_proj = new Projection("v_proj", c.HiddenSize, (long)_kvHeads * _headDim, c.QkvBias, dtype);
        o_proj = new Projection("o_proj", (long)_heads * _headDim, c.HiddenSize, c.OutputBias, dtype);
        RegisterComponents();
    }

    /// <param name="hidden">[B, T, H]</param>
    /// <param name="cos">[B, 1, T, hd]</param>
    /// <param name="sin">[B, 1, T, hd]</param>
    /// <param name="mask">[B, 1, T, S] additive (0 or the dtype's minimum)</param>
    /// <param name="cache">Layer cache to extend, or null.</param>
    public Tensor Forward(Tensor hidden, Tensor cos, Tensor sin, Tensor mask, KvCache.Layer? cache)
    {
        long batch = hidden.shape[0], time = hidden.shape[1];
        Tensor q = q_proj.call(hidden).view(batch, time, _heads, _headDim).transpose(1, 2);   // [B, nH, T, hd]
        Tensor k = k_proj.call(hidden).view(batch, time, _kvHeads, _headDim).transpose(1, 2); // [B, nKV, T, hd]
        Tensor v = v_proj.call(hidden).view(batch, time, _kvHeads, _headDim).transpose(1, 2);
        q = RotaryEmbedding.Apply(q, cos, sin);
        k = RotaryEmbedding.Apply(k, cos, sin);
        if (cache is not null)
            (k, v) = cache.Append(k, v);                                                        // [B, nKV, S, hd]
        int groups = _heads / _kvHeads;
        if (groups > 1)
        {
            k = k.repeat_interleave(groups, dim: 1);                                            // [B, nH, S, hd]
            v = v.repeat_interleave(groups, dim: 1);
        }
        Tensor attended = F.scaled_dot_product_attention(q, k, v, mask, 0.0, false);           // [B, nH, T, hd]
        return o_proj.call(attended.transpose(1, 2).reshape(batch, time, (long)_heads * _headDim));
    }

    public IEnumerable<(string Name, Projection Projection)> Projections =>
        [("q_proj", q_proj), ("k_proj", k_proj), ("v_proj", v_proj), ("o_proj", o_proj)];
}

/// <summary>SwiGLU feed-forward block: <c>down(silu(gate(x)) · up(x))</c>.</summary>
internal sealed class LlamaMlp : nn.Module<Tensor, Tensor>
{
    private Projection gate_proj, up_proj, down_proj;

    public LlamaMlp(string name, DecoderConfig c, ScalarType dtype) : base(name)
    {
        gate_proj = new Projection("gate_proj", c.HiddenSize, c.IntermediateSize, c.MlpBias, dtype);
        up_proj = new Projection("up_proj", c.HiddenSize, c.IntermediateSize, c.MlpBias, dtype);
        down_proj = new Projection("down_proj", c.IntermediateSize, c.HiddenSize, c.MlpBias, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => down_proj.call(F.silu(gate_proj.call(x)).mul(up_proj.call(x)));

    public IEnumerable<(string Name, Projection Projection)> Projections =>
        [("gate_proj", gate_proj), ("up_proj", up_proj), ("down_proj", down_proj)];
}

/// <summary>One pre-norm decoder block.</summary>
internal sealed class LlamaDecoderLayer : nn.Module
{
    private LlamaAttention self_attn;
    private LlamaMlp mlp;
    private RmsNorm input_layernorm, post_attention_layernorm;

    public LlamaDecoderLayer(string name, DecoderConfig c, ScalarType dtype) : base(name)
    {
        self_attn = new LlamaAttention("self_attn", c, dtype);
        mlp = new LlamaMlp("mlp", c, dtype);
        input_layernorm = new RmsNorm("input_layernorm", c.HiddenSize, c.RmsNormEps, dtype);
        post_attention_layernorm = new RmsNorm("post_attention_layernorm", c.HiddenSize, c.RmsNormEps, dtype);
        RegisterComponents();
    }

    public Tensor Forward(Tensor hidden, Tensor cos, Tensor sin, Tensor mask, KvCache.Layer? cache)
    {
        Tensor attended = hidden.add(self_attn.Forward(input_layernorm.call(hidden), cos, sin, mask, cache));
        return attended.add(mlp.call(post_attention_layernorm.call(attended)));
    }

    public IEnumerable<(string Name, Projection Projection)> Projections =>
        self_attn.Projections.Select(p => ("self_attn." + p.Name, p.Projection))
            .Concat(mlp.Projections.Select(p => ("mlp." + p.Name, p.Projection)));
}

/// <summary>Embeddings, decoder layers and the final norm: <c>LlamaModel</c> in transformers.</summary>
internal sealed class LlamaBackbone : nn.Module
{
    private Embedding embed_tokens;
    private ModuleList<LlamaDecoderLayer> layers;
    private RmsNorm norm;

    public LlamaBackbone(string name, DecoderConfig c, ScalarType dtype) : base(name)
    {
        embed_tokens = nn.Embedding(c.VocabSize, c.HiddenSize, dtype: dtype);
        layers = new ModuleList<LlamaDecoderLayer>(Enumerable.Range(0, c.NumHiddenLayers).Select(i => new LlamaDecoderLayer($"{i}", c, dtype)).ToArray());
        norm = new RmsNorm("norm", c.HiddenSize, c.RmsNormEps, dtype);
        RegisterComponents();
    }

    public Embedding Embeddings => embed_tokens;

    public IList<LlamaDecoderLayer> Layers => layers;

    public RmsNorm Norm => norm;
}
#pragma warning restore IDE1006
