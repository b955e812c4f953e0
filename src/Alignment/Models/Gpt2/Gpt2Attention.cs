using Alignment.Models.Decoder;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Alignment.Models.Gpt2;

/// <summary>
/// GPT-2's multi-head self-attention: one Conv1D <c>c_attn</c> makes queries, keys and values ([H, 3H], split in that
/// order), scores scaled by 1/√head_dim (and by 1/(layer + 1) with <c>scale_attn_by_inverse_layer_idx</c>), no
/// rotary embeddings, and the Conv1D <c>c_proj</c>.
/// </summary>
internal sealed class Gpt2Attention : nn.Module
{
#pragma warning disable IDE1006 // Hugging Face names
    private Projection c_attn, c_proj;
#pragma warning restore IDE1006
    private readonly int _heads, _headDim;
    private readonly double _queryScale;

    public Gpt2Attention(string name, DecoderConfig c, int layerIndex, ScalarType dtype) : base(name)
    {
        _heads = c.NumAttentionHeads;
        _headDim = c.HeadDim;
        c_attn = new Projection("c_attn", c.HiddenSize, 3L * c.HiddenSize, hasBias: true, dtype, fanInFanOut: true);
        c_proj = new Projection("c_proj", c.HiddenSize, c.HiddenSize, hasBias: true, dtype, fanInFanOut: true);
        // scaled_dot_product_attention divides by √head_dim; the query carries whatever else GPT-2's options ask for.
        _queryScale = (c.ScaleAttentionWeights ? 1 : Math.Sqrt(_headDim)) / (c.ScaleAttentionByInverseLayerIdx ? layerIndex + 1 : 1);
        RegisterComponents();
    }

    /// <param name="hidden">[B, T, H]</param>
    /// <param name="mask">[B, 1, T, S] additive</param>
    /// <param name="cache">Layer cache to extend, or null.</param>
    public Tensor Forward(Tensor hidden, Tensor mask, KvCache.Layer? cache)
    {
        long batch = hidden.shape[0], time = hidden.shape[1], width = (long)_heads * _headDim;
        Tensor[] qkv = c_attn.call(hidden).split(width, dim: -1);
        Tensor Heads(Tensor x) => x.view(batch, time, _heads, _headDim).transpose(1, 2);   // [B, nH, T, hd]
        Tensor q = Heads(qkv[0]), k = Heads(qkv[1]), v = Heads(qkv[2]);
        if (_queryScale != 1)
            q = q.mul(_queryScale);
        if (cache is not null)
            (k, v) = cache.Append(k, v);                                                    // [B, nH, S, hd]
        Tensor attended = F.scaled_dot_product_attention(q, k, v, mask, 0.0, false);       // [B, nH, T, hd]
        return c_proj.call(attended.transpose(1, 2).reshape(batch, time, width));
    }

    public IEnumerable<(string Name, Projection Projection)> Projections => [("c_attn", c_attn), ("c_proj", c_proj)];
}
