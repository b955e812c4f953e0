using System.Text.Json;
using System.Text.Json.Nodes;

namespace Alignment.Models;

/// <summary>Rotary-embedding frequency scaling (<c>rope_scaling</c> in config.json).</summary>
/// <param name="Type"><c>llama3</c>, <c>linear</c> or <c>longrope</c> (Phi-3; also read from <c>su</c>).</param>
/// <param name="Factor">Scaling factor (longrope: max_position_embeddings / original_max_position_embeddings).</param>
/// <param name="LowFreqFactor">llama3: <c>low_freq_factor</c>.</param>
/// <param name="HighFreqFactor">llama3: <c>high_freq_factor</c>.</param>
/// <param name="OriginalMaxPositionEmbeddings">llama3 and longrope: <c>original_max_position_embeddings</c>.</param>
public sealed record RopeScaling(string Type, double Factor, double LowFreqFactor = 1, double HighFreqFactor = 4,
    long OriginalMaxPositionEmbeddings = 8192)
{
    /// <summary>longrope: <c>short_factor</c>, one divisor per rotary frequency, used while every position is below the original length.</summary>
    public IReadOnlyList<double>? ShortFactor { get; init; }

    /// <summary>longrope: <c>long_factor</c>, used when a forward pass reaches past the original length.</summary>
    public IReadOnlyList<double>? LongFactor { get; init; }

    /// <summary>longrope: <c>attention_factor</c> multiplying cos and sin; null: √(1 + ln factor / ln original) when factor &gt; 1, else 1.</summary>
    public double? AttentionFactor { get; init; }
}

/// <summary>
/// The architecture of a decoder as Hugging Face's <c>config.json</c> describes it: the Llama family (Llama 2/3,
/// Mistral, Qwen2/2.5/3, SmolLM, TinyLlama), Gemma 1/2/3 (text), Phi-3/3.5 and GPT-2.
/// </summary>
public sealed partial record DecoderConfig
{
    /// <summary>The <c>model_type</c> values this library implements.</summary>
    public static IReadOnlyList<string> SupportedModelTypes { get; } = ["gemma", "gemma2", "gemma3_text", "gpt2", "llama", "mistral", "phi3", "qwen2", "qwen3"];

    /// <summary><c>model_type</c>.</summary>
    public string ModelType { get; init; } = "llama";
    /// <summary><c>vocab_size</c> V.</summary>
    public int VocabSize { get; init; }
    /// <summary><c>hidden_size</c> H.</summary>
    public int HiddenSize { get; init; }
    /// <summary><c>intermediate_size</c> of the MLP (GPT-2: <c>n_inner</c>, 4·H when null).</summary>
    public int IntermediateSize { get; init; }
    /// <summary><c>num_hidden_layers</c>.</summary>
    public int NumHiddenLayers { get; init; }
    /// <summary><c>num_attention_heads</c>.</summary>
    public int NumAttentionHeads { get; init; }
    /// <summary><c>num_key_value_heads</c> (grouped-query attention); defaults to the attention heads.</summary>
    public int NumKeyValueHeads { get; init; }
    /// <summary><c>head_dim</c>; defaults to H / heads.</summary>
    public int HeadDim { get; init; }
    /// <summary>The norms' epsilon: <c>rms_norm_eps</c> (GPT-2's LayerNorm: <c>layer_norm_epsilon</c>).</summary>
    public double RmsNormEps { get; init; } = 1e-6;
    /// <summary><c>rope_theta</c>.</summary>
    public double RopeTheta { get; init; } = 10000;
    /// <summary><c>rope_scaling</c>, or null.</summary>
    public RopeScaling? RopeScaling { get; init; }
    /// <summary><c>max_position_embeddings</c>.</summary>
    public int MaxPositionEmbeddings { get; init; } = 2048;
    /// <summary><c>tie_word_embeddings</c>: the lm_head is the embedding matrix.</summary>
    public bool TieWordEmbeddings { get; init; }
    /// <summary>Biases on the q/k/v projections (Qwen2, or Llama's <c>attention_bias</c>).</summary>
    public bool QkvBias { get; init; }
    /// <summary>Bias on the output projection (Llama's <c>attention_bias</c>; Qwen2 has none).</summary>
    public bool OutputBias { get; init; }
    /// <summary><c>mlp_bias</c>.</summary>
    public bool MlpBias { get; init; }
    /// <summary>Qwen3's per-head RMSNorm of queries and keys (<c>q_norm</c>, <c>k_norm</c>, over head_dim) before rotary.</summary>
    public bool QkNorm { get; init; }
    /// <summary><c>sliding_window</c> when in use (Mistral, Qwen2 with <c>use_sliding_window</c>), else null.</summary>
    public int? SlidingWindow { get; init; }
    /// <summary>
    /// The MLP's activation (<c>hidden_act</c>, GPT-2's <c>activation_function</c>): <c>silu</c>, <c>gelu_new</c> or
    /// <c>gelu_pytorch_tanh</c> (the tanh approximation), or <c>gelu</c> (exact).
    /// </summary>
    public string HiddenAct { get; init; } = "silu";
    /// <summary>GPT-2's <c>scale_attn_weights</c>: attention scores are divided by √head_dim (true everywhere else).</summary>
    public bool ScaleAttentionWeights { get; init; } = true;
    /// <summary>GPT-2's <c>scale_attn_by_inverse_layer_idx</c>: layer i's scores are also divided by i + 1.</summary>
    public bool ScaleAttentionByInverseLayerIdx { get; init; }
    /// <summary><c>bos_token_id</c>.</summary>
    public long? BosTokenId { get; init; }
    /// <summary><c>eos_token_id</c> (one or several).</summary>
    public IReadOnlyList<long> EosTokenIds { get; init; } = [];
    /// <summary><c>pad_token_id</c>.</summary>
    public long? PadTokenId { get; init; }
    /// <summary><c>torch_dtype</c> as stored, for example <c>bfloat16</c>.</summary>
    public string? TorchDtype { get; init; }

    /// <summary>The parsed JSON, kept so that saving writes back the fields this library does not interpret.</summary>
    public JsonObject Raw { get; init; } = new();

    /// <summary>Reads <c>config.json</c>.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Malformed JSON, an unsupported <c>model_type</c> or feature, or a missing or inconsistent field; the message names it.</exception>
    public static DecoderConfig Load(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"No config.json at '{path}'.", path);
        JsonObject root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(path))?.AsObject() ?? throw new InvalidDataException($"'{path}' is empty.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not valid JSON: {e.Message}", e);
        }
        try
        {
            return FromJson(root);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"'{path}': {e.Message}", e);
        }
    }

    /// <summary>Interprets a parsed config.json.</summary>
    /// <exception cref="InvalidDataException">As <see cref="Load"/>.</exception>
    public static DecoderConfig FromJson(JsonObject json)
    {
        ArgumentNullException.ThrowIfNull(json);
        // Values built in code are typed by their CLR type (an int cannot be read as a long); parsed ones convert freely.
        JsonObject root = JsonNode.Parse(json.ToJsonString())!.AsObject();
        string modelType = String(root, "model_type") ?? throw new InvalidDataException("\"model_type\" is missing.");
        if (!SupportedModelTypes.Contains(modelType))
            throw new InvalidDataException($"model_type '{modelType}' is not supported; supported: {string.Join(", ", SupportedModelTypes)}.");
        if (root["quantization_config"] is not null)
            throw new InvalidDataException("quantized checkpoints (\"quantization_config\") are not supported.");
        if (modelType == "gpt2")
            return Gpt2(root);
        bool gemma = modelType.StartsWith("gemma", StringComparison.Ordinal);
        string act = String(root, "hidden_act") ?? "silu";
        if (act != "silu" && !gemma)
            throw new InvalidDataException($"hidden_act '{act}' is not supported; the Llama family uses 'silu'.");

        int hidden = RequiredInt(root, "hidden_size");
        int heads = RequiredInt(root, "num_attention_heads");
        int kvHeads = OptionalPositiveInt(root, "num_key_value_heads") ?? heads;
        int headDim = OptionalPositiveInt(root, "head_dim") ?? (hidden % heads == 0 ? hidden / heads
            : throw new InvalidDataException($"hidden_size {hidden} is not divisible by num_attention_heads {heads} and head_dim is not given."));
        if (heads % kvHeads != 0)
            throw new InvalidDataException($"num_attention_heads {heads} is not a multiple of num_key_value_heads {kvHeads}.");
        if (headDim % 2 != 0)
            throw new InvalidDataException($"head_dim {headDim} must be even for rotary embeddings.");

        bool qwen = modelType == "qwen2"; // q/k/v biases always, no o_proj bias; Qwen3 follows attention_bias for all four
        bool attentionBias = Bool(root, "attention_bias") ?? false;
        int? window = modelType switch
        {
            "mistral" or "phi3" => Int(root, "sliding_window"),
            "qwen2" or "qwen3" when Bool(root, "use_sliding_window") == true => Int(root, "sliding_window"),
            _ => null,
        };

        var config = new DecoderConfig
        {
            ModelType = modelType,
            VocabSize = RequiredInt(root, "vocab_size"),
            HiddenSize = hidden,
            IntermediateSize = RequiredInt(root, "intermediate_size"),
            NumHiddenLayers = RequiredInt(root, "num_hidden_layers"),
            NumAttentionHeads = heads,
            NumKeyValueHeads = kvHeads,
            HeadDim = headDim,
            RmsNormEps = OptionalPositiveDouble(root, "rms_norm_eps") ?? 1e-6,
            RopeTheta = OptionalPositiveDouble(root, "rope_theta") ?? 10000,
            RopeScaling = ParseRopeScaling(root["rope_scaling"]),
            MaxPositionEmbeddings = OptionalPositiveInt(root, "max_position_embeddings") ?? 2048,
            TieWordEmbeddings = Bool(root, "tie_word_embeddings") ?? false,
            QkvBias = qwen || attentionBias,
            OutputBias = !qwen && attentionBias,
            MlpBias = Bool(root, "mlp_bias") ?? false,
            QkNorm = modelType == "qwen3",
            SlidingWindow = window,
            BosTokenId = TokenId(root["bos_token_id"], "bos_token_id"),
            EosTokenIds = EosIds(root),
            PadTokenId = TokenId(root["pad_token_id"], "pad_token_id"),
            TorchDtype = String(root, "torch_dtype"),
            Raw = root,
        };
        return gemma ? Gemma(config, root) : modelType == "phi3" ? Phi3(config, root) : config;
    }

    /// <summary>Writes <c>config.json</c>: the original JSON with <c>torch_dtype</c> set to the weights' dtype.</summary>
    public void Save(string path, string? torchDtype = null)
    {
        JsonObject json = (JsonObject)Raw.DeepClone();
        if (torchDtype is not null)
            json["torch_dtype"] = torchDtype;
        File.WriteAllText(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    static IReadOnlyList<long> EosIds(JsonObject root) => root["eos_token_id"] switch
    {
        JsonArray ids => ids.Select(id => TokenId(id, "eos_token_id")!.Value).ToArray(),
        JsonNode id => [TokenId(id, "eos_token_id")!.Value],
        null => [],
    };

    static RopeScaling? ParseRopeScaling(JsonNode? node)
    {
        if (node is not JsonObject scaling)
            return null;
        string type = String(scaling, "rope_type") ?? String(scaling, "type") ?? "default";
        return type switch
        {
            "default" => null,
            "llama3" => new RopeScaling("llama3", RequiredDouble(scaling, "factor"), Double(scaling, "low_freq_factor") ?? 1,
                Double(scaling, "high_freq_factor") ?? 4, Long(scaling, "original_max_position_embeddings") ?? 8192),
            "linear" => new RopeScaling("linear", RequiredDouble(scaling, "factor")),
            "longrope" or "su" => new RopeScaling("longrope", Double(scaling, "factor") ?? 1)
            {
                ShortFactor = Factors(scaling, "short_factor"),
                LongFactor = Factors(scaling, "long_factor"),
                AttentionFactor = Double(scaling, "attention_factor"),
            },
            _ => throw new InvalidDataException($"rope_scaling type '{type}' is not supported; supported: llama3, linear, longrope."),
        };
    }

    static double[] Factors(JsonObject scaling, string key) => scaling[key] is JsonArray values && values.All(v => v is JsonValue)
        ? values.Select(v => v!.GetValue<double>()).ToArray()
        : throw new InvalidDataException($"rope_scaling \"{key}\" must be a list of numbers.");

    static string? String(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue(out string? s) ? s : null;
    static bool? Bool(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue(out bool b) ? b : null;
    static long? Long(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue(out long l) ? l : null;
    static int? Int(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue(out int i) ? i : null;

    static double? Double(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue(out double d) ? d : null;

    /// <summary>A field that may be absent or null, but when present is a positive integer.</summary>
    static int? OptionalPositiveInt(JsonObject o, string key) => o[key] is null ? null : RequiredInt(o, key);

    /// <summary>A field that may be absent or null, but when present is a finite number &gt; 0.</summary>
    static double? OptionalPositiveDouble(JsonObject o, string key) => o[key] is null ? null
        : Double(o, key) is { } value && value > 0 && double.IsFinite(value) ? value
        : throw new InvalidDataException($"\"{key}\" must be a number > 0; found {o[key]!.ToJsonString()}.");

    /// <summary>A token id: absent or null, else a non-negative integer.</summary>
    static long? TokenId(JsonNode? node, string key) => node is null ? null
        : node is JsonValue v && v.TryGetValue(out long id) && id >= 0 ? id
        : throw new InvalidDataException($"\"{key}\" must be a token id (an integer >= 0) or a list of them; found {node.ToJsonString()}.");

    /// <summary>Parameters of the decoder this config describes (embedding, layers, final norm, and the head when untied).</summary>
    public long ParameterCount
    {
        get
        {
            if (ModelType == "gpt2")
                return Gpt2ParameterCount;
            long attention = (long)HiddenSize * NumAttentionHeads * HeadDim * 2 + (long)HiddenSize * NumKeyValueHeads * HeadDim * 2;
            long mlp = 3L * HiddenSize * IntermediateSize;
            long embedding = (long)VocabSize * HiddenSize;
            long norms = (IsGemma && ModelType != "gemma" ? 4L : 2L) * HiddenSize + (QkNorm ? 2L * HeadDim : 0);
            return embedding * (TieWordEmbeddings ? 1 : 2) + NumHiddenLayers * (attention + mlp + norms) + HiddenSize;
        }
    }

    static int RequiredInt(JsonObject o, string key) => Int(o, key) is { } value && value > 0 ? value
        : throw new InvalidDataException($"\"{key}\" must be a positive integer; found {o[key]?.ToJsonString() ?? "nothing"}.");

    static double RequiredDouble(JsonObject o, string key) => Double(o, key)
        ?? throw new InvalidDataException($"\"{key}\" must be a number; found {o[key]?.ToJsonString() ?? "nothing"}.");
}
