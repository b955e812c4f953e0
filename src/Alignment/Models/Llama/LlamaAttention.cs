using Alignment.Models.Decoder;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Alignment.Models.Llama;

/// <summary>
/// Grouped-query self-attention with rotary embeddings and an optional KV cache; Gemma's scale
/// (<c>query_pre_attn_scalar</c>^−½) and attention-logit soft-capping when the config asks for them.
/// </summary>
internal sealed class LlamaAttention : nn.Module
{
    private Projection? q_proj, k_proj, v_proj, qkv_proj; // separate, or Phi-3's fused [q; k; v]
    private Projection o_proj;
    private RmsNorm? q_norm, k_norm; // Qwen3, Gemma 3: per head, over head_dim, before rotary
    private readonly int _heads, _kvHeads, _headDim;
    private readonly double _scale;     // multiplies q·k
    private readonly double? _softcap;  // Gemma 2: scores → c·tanh(scores / c)

    public LlamaAttention(string name, DecoderConfig c, ScalarType dtype) : base(name)
    {
        _heads = c.NumAttentionHeads;
        _kvHeads = c.NumKeyValueHeads;
        _headDim = c.HeadDim;
        if (c.FusedProjections)
            qkv_proj = new Projection("qkv_proj", c.HiddenSize, (long)(_heads + 2 * _kvHeads) * _headDim, c.QkvBias, dtype);
        else
        {
            q_proj = new Projection("q_proj", c.HiddenSize, (long)_heads * _headDim, c.QkvBias, dtype);
            k_proj = new Projection("k_proj", c.HiddenSize, (long)_kvHeads * _headDim, c.QkvBias, dtype);
            v_proj = new Projection("v_proj", c.HiddenSize, (long)_kvHeads * _headDim, c.QkvBias, dtype);
        }
        o_proj = new Projection("o_proj", (long)_heads * _headDim, c.HiddenSize, c.OutputBias, dtype);
        if (c.QkNorm)
        {
            q_norm = new RmsNorm("q_norm", _headDim, c.RmsNormEps, dtype, unitOffset: c.IsGemma);
            k_norm = new RmsNorm("k_norm", _headDim, c.RmsNormEps, dtype, unitOffset: c.IsGemma);
        }
        _scale = 1 / Math.Sqrt(c.QueryPreAttentionScalar ?? _headDim);
        _softcap = c.AttentionLogitSoftcapping;
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
        var (qFlat, kFlat, vFlat) = Queries(hidden);
        Tensor q = qFlat.view(batch, time, _heads, _headDim);                                   // [B, T, nH, hd]
        Tensor k = kFlat.view(batch, time, _kvHeads, _headDim);                                 // [B, T, nKV, hd]
        if (q_norm is not null)
            (q, k) = (q_norm.call(q), k_norm!.call(k));
        q = q.transpose(1, 2);                                                                  // [B, nH, T, hd]
        k = k.transpose(1, 2);                                                                  // [B, nKV, T, hd]
        Tensor v = vFlat.view(batch, time, _kvHeads, _headDim).transpose(1, 2);
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
        Tensor attended = _softcap is { } cap ? SoftCapped(q, k, v, mask, cap)
            : F.scaled_dot_product_attention(_scale == 1 / Math.Sqrt(_headDim) ? q : q.mul(_scale * Math.Sqrt(_headDim)), k, v, mask, 0.0, false); // [B, nH, T, hd]
        return o_proj.call(attended.transpose(1, 2).reshape(batch, time, (long)_heads * _headDim));
    }

    /// <summary>[B, T, nH·hd], [B, T, nKV·hd], [B, T, nKV·hd]: three projections, or Phi-3's one split in that order.</summary>
    (Tensor Q, Tensor K, Tensor V) Queries(Tensor hidden)
    {
        if (qkv_proj is null)
            return (q_proj!.call(hidden), k_proj!.call(hidden), v_proj!.call(hidden));
        Tensor[] parts = qkv_proj.call(hidden).split([(long)_heads * _headDim, (long)_kvHeads * _headDim, (long)_kvHeads * _headDim], -1);
        return (parts[0], parts[1], parts[2]);
    }

    /// <summary>Gemma 2's eager attention: softmax(c·tanh(q·kᵀ·scale / c) + mask) in float32, times v.</summary>
    Tensor SoftCapped(Tensor q, Tensor k, Tensor v, Tensor mask, double cap)
    {
        Tensor scores = q.matmul(k.transpose(-2, -1)).mul(_scale).div(cap).tanh().mul(cap).add(mask); // [B, nH, T, S]
        return scores.softmax(-1, ScalarType.Float32).to_type(q.dtype).matmul(v);
    }

    public IEnumerable<(string Name, Projection Projection)> Projections => qkv_proj is not null
        ? [("qkv_proj", qkv_proj), ("o_proj", o_proj)]
        : [("q_proj", q_proj!), ("k_proj", k_proj!), ("v_proj", v_proj!), ("o_proj", o_proj)];
}
