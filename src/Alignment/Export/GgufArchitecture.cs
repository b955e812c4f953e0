using Alignment.Models;
using static TorchSharp.torch;

namespace Alignment.Export;

/// <summary>
/// What llama.cpp's <c>llama</c>, <c>qwen2</c> and <c>qwen3</c> architectures read: their metadata keys, tensor names, and the q/k
/// permutation of the <c>llama</c> architecture (Hugging Face stores rotary weights for rotate-half; llama.cpp's
/// <c>llama</c> rotates interleaved pairs, so its converter reorders each head's rows; <c>qwen2</c> and <c>qwen3</c> use
/// NeoX rotary, the Hugging Face layout, and take the weights as they are; Qwen3 adds its q/k norms).
/// </summary>
internal static class GgufArchitecture
{
    /// <summary>llama.cpp's architecture of a config.</summary>
    /// <exception cref="NotSupportedException">A model type or rope scaling that cannot be exported.</exception>
    public static string Of(DecoderConfig config)
    {
        string architecture = config.ModelType switch
        {
            "llama" or "mistral" => "llama",
            "qwen2" => "qwen2",
            "qwen3" => "qwen3",
            _ => throw new NotSupportedException($"GGUF export does not know model_type '{config.ModelType}'; it exports llama, mistral, qwen2 and qwen3."),
        };
        if (config.RopeScaling is { Type: not ("linear" or "llama3") } scaling)
            throw new NotSupportedException($"GGUF export does not write rope_scaling '{scaling.Type}'; it writes linear and llama3.");
        if (config.MlpBias || config.OutputBias || architecture == "qwen3" && config.QkvBias)
            throw new NotSupportedException("GGUF export does not write models with mlp_bias, o_proj biases or (Qwen3) attention_bias.");
        return architecture;
    }

    public static void AddMetadata(GgufWriter gguf, DecoderConfig config, string a, string name, GgufFileType type)
    {
        gguf.Add("general.architecture", a);
        gguf.Add("general.name", name);
        gguf.Add("general.alignment", (uint)GgufWriter.Alignment);
        gguf.Add("general.file_type", (uint)(type switch { GgufFileType.F32 => 0, GgufFileType.F16 => 1, GgufFileType.Q8_0 => 7, _ => 32 }));
        if (type == GgufFileType.Q8_0)
            gguf.Add("general.quantization_version", 2u);
        gguf.Add($"{a}.vocab_size", (uint)config.VocabSize);
        gguf.Add($"{a}.context_length", (uint)config.MaxPositionEmbeddings);
        gguf.Add($"{a}.embedding_length", (uint)config.HiddenSize);
        gguf.Add($"{a}.block_count", (uint)config.NumHiddenLayers);
        gguf.Add($"{a}.feed_forward_length", (uint)config.IntermediateSize);
        gguf.Add($"{a}.attention.head_count", (uint)config.NumAttentionHeads);
        gguf.Add($"{a}.attention.head_count_kv", (uint)config.NumKeyValueHeads);
        gguf.Add($"{a}.attention.layer_norm_rms_epsilon", (float)config.RmsNormEps);
        gguf.Add($"{a}.rope.freq_base", (float)config.RopeTheta);
        gguf.Add($"{a}.rope.dimension_count", (uint)config.HeadDim);
        if (config.HeadDim * config.NumAttentionHeads != config.HiddenSize)
        {
            gguf.Add($"{a}.attention.key_length", (uint)config.HeadDim);
            gguf.Add($"{a}.attention.value_length", (uint)config.HeadDim);
        }
        if (config.RopeScaling is { Type: "linear" } linear)
        {
            gguf.Add($"{a}.rope.scaling.type", "linear");
            gguf.Add($"{a}.rope.scaling.factor", (float)linear.Factor);
        }
    }

    /// <summary>
    /// Each tensor to write: its GGUF name, where it comes from, its shape (PyTorch order) and any transform (the
    /// <c>llama</c> q/k permutation). Llama 3's rope scaling becomes llama.cpp's <c>rope_freqs</c> (one factor per
    /// frequency); a tied model has no <c>output</c> (llama.cpp reuses <c>token_embd</c>).
    /// </summary>
    public static IEnumerable<(string Name, Func<Tensor> Source, long[] Shape, Func<Tensor, Tensor>? Transform)> Tensors(DecoderConfig config, string a, SafeTensorsCheckpoint checkpoint)
    {
        (string, Func<Tensor>, long[], Func<Tensor, Tensor>?) From(string gguf, string hf, Func<Tensor, Tensor>? transform = null) =>
            checkpoint.Entries.TryGetValue(hf, out SafeTensorEntry? entry)
                ? (gguf, () => checkpoint.Read(hf), entry.Shape, transform)
                : throw new InvalidDataException($"The checkpoint has no tensor '{hf}'.");

        yield return From("token_embd.weight", "model.embed_tokens.weight");
        if (config.RopeScaling is { Type: "llama3" } llama3)
        {
            float[] factors = Llama3RopeFactors(config, llama3);
            yield return ("rope_freqs.weight", () => tensor(factors), [factors.Length], null);
        }
        bool permute = a == "llama";
        for (int i = 0; i < config.NumHiddenLayers; i++)
        {
            string hf = $"model.layers.{i}.", blk = $"blk.{i}.";
            yield return From(blk + "attn_norm.weight", hf + "input_layernorm.weight");
            yield return From(blk + "attn_q.weight", hf + "self_attn.q_proj.weight", permute ? w => Permute(w, config.NumAttentionHeads) : null);
            yield return From(blk + "attn_k.weight", hf + "self_attn.k_proj.weight", permute ? w => Permute(w, config.NumKeyValueHeads) : null);
            yield return From(blk + "attn_v.weight", hf + "self_attn.v_proj.weight");
            if (config.QkvBias)
            {
                yield return From(blk + "attn_q.bias", hf + "self_attn.q_proj.bias", permute ? b => Permute(b, config.NumAttentionHeads) : null);
                yield return From(blk + "attn_k.bias", hf + "self_attn.k_proj.bias", permute ? b => Permute(b, config.NumKeyValueHeads) : null);
                yield return From(blk + "attn_v.bias", hf + "self_attn.v_proj.bias");
            }
            if (config.QkNorm)
            {
                yield return From(blk + "attn_q_norm.weight", hf + "self_attn.q_norm.weight");
                yield return From(blk + "attn_k_norm.weight", hf + "self_attn.k_norm.weight");
            }
            yield return From(blk + "attn_output.weight", hf + "self_attn.o_proj.weight");
            yield return From(blk + "ffn_norm.weight", hf + "post_attention_layernorm.weight");
            yield return From(blk + "ffn_gate.weight", hf + "mlp.gate_proj.weight");
            yield return From(blk + "ffn_up.weight", hf + "mlp.up_proj.weight");
            yield return From(blk + "ffn_down.weight", hf + "mlp.down_proj.weight");
        }
        yield return From("output_norm.weight", "model.norm.weight");
        if (!config.TieWordEmbeddings)
            yield return From("output.weight", "lm_head.weight");
    }

    /// <summary>
    /// The rows of each head from rotate-half order (first halves, then second halves of the pairs) to interleaved pairs:
    /// viewed as [heads, 2, d/2, …], the middle two axes swap (llama.cpp's converter's <c>permute</c>).
    /// </summary>
    internal static Tensor Permute(Tensor weight, int heads)
    {
        long rows = weight.shape[0];
        long[] shape = weight.shape;
        return weight.reshape([heads, 2, rows / heads / 2, .. shape[1..]]).transpose(1, 2).reshape(shape);
    }

    /// <summary>Llama 3.1's per-frequency divisors of the rotary base: 1 for high frequencies, the factor for low ones, a smooth blend between.</summary>
    internal static float[] Llama3RopeFactors(DecoderConfig config, RopeScaling scaling)
    {
        int dim = config.HeadDim;
        double lowWavelength = scaling.OriginalMaxPositionEmbeddings / scaling.LowFreqFactor;
        double highWavelength = scaling.OriginalMaxPositionEmbeddings / scaling.HighFreqFactor;
        return Enumerable.Range(0, dim / 2).Select(i =>
        {
            double frequency = 1 / Math.Pow(config.RopeTheta, 2.0 * i / dim);
            double wavelength = 2 * Math.PI / frequency;
            if (wavelength < highWavelength)
                return 1f;
            if (wavelength > lowWavelength)
                return (float)scaling.Factor;
            double smooth = (scaling.OriginalMaxPositionEmbeddings / wavelength - scaling.LowFreqFactor) / (scaling.HighFreqFactor - scaling.LowFreqFactor);
            return (float)(1 / ((1 - smooth) / scaling.Factor + smooth));
        }).ToArray();
    }
}
