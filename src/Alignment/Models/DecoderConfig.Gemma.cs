using System.Text.Json.Nodes;

namespace Alignment.Models;

public sealed partial record DecoderConfig
{
    /// <summary>
    /// <c>final_logit_softcapping</c> c (Gemma 2): logits become c·tanh(logits / c). Null when off. The fused log-prob
    /// kernels do not apply it: trainers score such a model through its full logits (<see cref="ICausalLM.Logits"/>).
    /// </summary>
    public double? FinalLogitSoftcapping { get; init; }

    /// <summary><c>attn_logit_softcapping</c> (Gemma 2): attention scores become c·tanh(scores / c) before the mask. Null when off.</summary>
    public double? AttentionLogitSoftcapping { get; init; }

    /// <summary><c>query_pre_attn_scalar</c> (Gemma): scores are scaled by its −½ power instead of head_dim's. Null: head_dim.</summary>
    public double? QueryPreAttentionScalar { get; init; }

    /// <summary>
    /// <c>layer_types</c>: per layer <c>sliding_attention</c> (within <see cref="SlidingWindow"/>) or <c>full_attention</c>
    /// (Gemma 2 alternates, Gemma 3 has five local layers to one global). Null: every layer uses the sliding window if any.
    /// </summary>
    public IReadOnlyList<string>? LayerTypes { get; init; }

    /// <summary><c>rope_local_base_freq</c> (Gemma 3): the rotary base of sliding layers, which take no rope scaling.</summary>
    public double? RopeLocalBaseFreq { get; init; }

    /// <summary>Gemma 1/2/3: embeddings scaled by √hidden, RMSNorm by (1 + weight), GeGLU.</summary>
    internal bool IsGemma => ModelType.StartsWith("gemma", StringComparison.Ordinal);

    /// <summary>The sliding window of layer <paramref name="layer"/>, or null for global attention.</summary>
    internal int? WindowOf(int layer) => LayerTypes is null || LayerTypes[layer] == "sliding_attention" ? SlidingWindow : null;

    static readonly string[] GemmaActivations = ["gelu_pytorch_tanh", "gelu_new", "gelu"];

    /// <summary>
    /// Gemma's fields on top of the Llama-style ones, with transformers' defaults for each version: head_dim 256,
    /// tied embeddings, <c>hidden_activation</c> (GELU's tanh form); Gemma 2: both soft-cappings (50, 30) and a 4096
    /// window on every other layer from the first; Gemma 3 text: q/k norms, a window on five layers of six, local
    /// rotary base 10 000 and global 1 000 000. An explicit null turns a soft-capping off.
    /// </summary>
    static DecoderConfig Gemma(DecoderConfig llama, JsonObject root)
    {
        string type = llama.ModelType;
        bool v2 = type == "gemma2", v3 = type == "gemma3_text";
        string act = String(root, "hidden_activation") ?? (type == "gemma" ? null : String(root, "hidden_act")) ?? "gelu_pytorch_tanh";
        if (!GemmaActivations.Contains(act))
            throw new InvalidDataException($"hidden_activation '{act}' is not supported; supported: {string.Join(", ", GemmaActivations)}.");
        if (Bool(root, "attention_bias") == true)
            throw new InvalidDataException("\"attention_bias\": Gemma with attention biases is not supported.");
        int layers = llama.NumHiddenLayers;
        int? window = v2 || v3 ? OptionalPositiveInt(root, "sliding_window") ?? 4096 : null;
        IReadOnlyList<string>? layerTypes = root["layer_types"] is JsonArray listed
            ? listed.Select(t => t?.GetValue<string>() ?? "").ToArray()
            : v2 ? Enumerable.Range(0, layers).Select(i => i % 2 == 0 ? "sliding_attention" : "full_attention").ToArray()
            : v3 ? Enumerable.Range(0, layers).Select(i => (i + 1) % (OptionalPositiveInt(root, "sliding_window_pattern") ?? 6) != 0 ? "sliding_attention" : "full_attention").ToArray()
            : null;
        if (layerTypes is not null && (layerTypes.Count != layers || layerTypes.Any(t => t is not ("sliding_attention" or "full_attention"))))
            throw new InvalidDataException($"\"layer_types\" must list {layers} entries, each sliding_attention or full_attention.");
        double? Softcap(string key, double? fallback) => root.ContainsKey(key) ? root[key] is null ? null : OptionalPositiveDouble(root, key) : fallback;
        return llama with
        {
            HeadDim = OptionalPositiveInt(root, "head_dim") ?? 256,
            TieWordEmbeddings = Bool(root, "tie_word_embeddings") ?? true,
            QkvBias = false,
            OutputBias = false,
            HiddenAct = act,
            QkNorm = v3,
            SlidingWindow = window,
            LayerTypes = layerTypes,
            AttentionLogitSoftcapping = Softcap("attn_logit_softcapping", v2 ? 50 : null),
            FinalLogitSoftcapping = Softcap("final_logit_softcapping", v2 ? 30 : null),
            QueryPreAttentionScalar = OptionalPositiveDouble(root, "query_pre_attn_scalar") ?? (v2 || v3 ? 256 : null),
            RopeTheta = OptionalPositiveDouble(root, "rope_theta") ?? (v3 ? 1_000_000 : 10_000),
            RopeLocalBaseFreq = v3 ? OptionalPositiveDouble(root, "rope_local_base_freq") ?? 10_000 : null,
        };
    }
}
