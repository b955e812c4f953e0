using System.Text.Json.Nodes;

namespace Alignment.Models;

public sealed partial record DecoderConfig
{
    /// <summary>Activations GPT-2's <c>activation_function</c> may name here.</summary>
    static readonly string[] Gpt2Activations = ["gelu_new", "gelu_pytorch_tanh", "gelu"];

    /// <summary>
    /// GPT-2's config.json (<c>GPT2Config</c>): <c>n_embd</c>, <c>n_layer</c>, <c>n_head</c>, <c>n_positions</c>,
    /// <c>n_inner</c> (4·n_embd when null), <c>activation_function</c>, <c>layer_norm_epsilon</c>; the Llama-style names
    /// are accepted too, as transformers' <c>attribute_map</c> does. Embeddings are tied unless said otherwise.
    /// </summary>
    static DecoderConfig Gpt2(JsonObject root)
    {
        if (Bool(root, "add_cross_attention") == true)
            throw new InvalidDataException("\"add_cross_attention\": GPT-2 as an encoder-decoder's decoder is not supported.");
        string act = String(root, "activation_function") ?? "gelu_new";
        if (!Gpt2Activations.Contains(act))
            throw new InvalidDataException($"activation_function '{act}' is not supported; supported: {string.Join(", ", Gpt2Activations)}.");
        string Key(string gpt2, string llama) => root[gpt2] is null && root[llama] is not null ? llama : gpt2;
        int hidden = RequiredInt(root, Key("n_embd", "hidden_size"));
        int heads = RequiredInt(root, Key("n_head", "num_attention_heads"));
        if (hidden % heads != 0)
            throw new InvalidDataException($"n_embd {hidden} is not divisible by n_head {heads}.");
        return new DecoderConfig
        {
            ModelType = "gpt2",
            VocabSize = RequiredInt(root, "vocab_size"),
            HiddenSize = hidden,
            IntermediateSize = OptionalPositiveInt(root, "n_inner") ?? 4 * hidden,
            NumHiddenLayers = RequiredInt(root, Key("n_layer", "num_hidden_layers")),
            NumAttentionHeads = heads,
            NumKeyValueHeads = heads,
            HeadDim = hidden / heads,
            RmsNormEps = OptionalPositiveDouble(root, "layer_norm_epsilon") ?? 1e-5,
            MaxPositionEmbeddings = OptionalPositiveInt(root, Key("n_positions", "max_position_embeddings")) ?? 1024,
            TieWordEmbeddings = Bool(root, "tie_word_embeddings") ?? true,
            QkvBias = true,
            OutputBias = true,
            MlpBias = true,
            HiddenAct = act,
            ScaleAttentionWeights = Bool(root, "scale_attn_weights") ?? true,
            ScaleAttentionByInverseLayerIdx = Bool(root, "scale_attn_by_inverse_layer_idx") ?? false,
            BosTokenId = TokenId(root["bos_token_id"], "bos_token_id"),
            EosTokenIds = EosIds(root),
            PadTokenId = TokenId(root["pad_token_id"], "pad_token_id"),
            TorchDtype = String(root, "torch_dtype"),
            Raw = root,
        };
    }

    /// <summary>Token and position embeddings, per layer two LayerNorms and four biased projections, the final LayerNorm.</summary>
    long Gpt2ParameterCount
    {
        get
        {
            long h = HiddenSize, i = IntermediateSize;
            long layer = 2 * 2 * h + (h * 3 * h + 3 * h) + (h * h + h) + (h * i + i) + (i * h + h);
            long embedding = (long)VocabSize * h;
            return embedding * (TieWordEmbeddings ? 1 : 2) + (long)MaxPositionEmbeddings * h + NumHiddenLayers * layer + 2 * h;
        }
    }
}
