using System.Text.Json.Nodes;
using Alignment.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Tests.Models;

/// <summary>Tiny random Llama-family configs and model folders written to a temp folder that the test deletes.</summary>
internal sealed class TinyModels : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("alignment-models-").FullName;

    public void Dispose() => Directory.Delete(Root, recursive: true);

    public static JsonObject ConfigJson(string modelType = "llama", bool tied = false, int layers = 2, JsonObject? ropeScaling = null) => new()
    {
        ["model_type"] = modelType,
        ["architectures"] = new JsonArray(modelType switch { "qwen2" => "Qwen2ForCausalLM", "qwen3" => "Qwen3ForCausalLM", _ => "LlamaForCausalLM" }),
        ["vocab_size"] = 64,
        ["hidden_size"] = 32,
        ["intermediate_size"] = 48,
        ["num_hidden_layers"] = layers,
        ["num_attention_heads"] = 4,
        ["num_key_value_heads"] = 2,
        ["rms_norm_eps"] = 1e-5,
        ["rope_theta"] = 10000.0,
        ["max_position_embeddings"] = 128,
        ["tie_word_embeddings"] = tied,
        ["hidden_act"] = "silu",
        ["bos_token_id"] = 1,
        ["eos_token_id"] = 2,
        ["torch_dtype"] = "float32",
        ["rope_scaling"] = ropeScaling,
    };

    /// <summary>A tiny GPT-2 config.json as transformers writes it (<c>n_embd</c>, <c>n_layer</c>, …; tied unless said).</summary>
    public static JsonObject Gpt2ConfigJson(bool? tied = null, int layers = 2, bool inverseLayerScale = false)
    {
        var json = new JsonObject
        {
            ["model_type"] = "gpt2",
            ["architectures"] = new JsonArray("GPT2LMHeadModel"),
            ["vocab_size"] = 64,
            ["n_embd"] = 32,
            ["n_layer"] = layers,
            ["n_head"] = 4,
            ["n_inner"] = null,
            ["n_positions"] = 40,
            ["n_ctx"] = 40,
            ["activation_function"] = "gelu_new",
            ["layer_norm_epsilon"] = 1e-5,
            ["resid_pdrop"] = 0.1,
            ["embd_pdrop"] = 0.1,
            ["attn_pdrop"] = 0.1,
            ["scale_attn_by_inverse_layer_idx"] = inverseLayerScale,
            ["bos_token_id"] = 1,
            ["eos_token_id"] = 2,
            ["torch_dtype"] = "float32",
        };
        if (tied is { } value)
            json["tie_word_embeddings"] = value;
        return json;
    }

    /// <summary>
    /// A tiny Gemma config: head_dim 16 ≠ hidden/heads, query_pre_attn_scalar 24 ≠ head_dim, a 3-token window. Gemma 2:
    /// 3 layers (sliding, global, sliding by default), soft-capping small enough to bite (attention 2, final 3); Gemma 3:
    /// every third layer global, local rotary base 100, global base 10 000 with linear scaling 4.
    /// </summary>
    public static JsonObject GemmaConfigJson(string modelType = "gemma2", bool? tied = null)
    {
        var json = new JsonObject
        {
            ["model_type"] = modelType,
            ["architectures"] = new JsonArray(modelType switch { "gemma" => "GemmaForCausalLM", "gemma2" => "Gemma2ForCausalLM", _ => "Gemma3ForCausalLM" }),
            ["vocab_size"] = 64,
            ["hidden_size"] = 32,
            ["intermediate_size"] = 48,
            ["num_hidden_layers"] = 3,
            ["num_attention_heads"] = 4,
            ["num_key_value_heads"] = 2,
            ["head_dim"] = 16,
            ["hidden_activation"] = "gelu_pytorch_tanh",
            ["rms_norm_eps"] = 1e-6,
            ["rope_theta"] = 10000.0,
            ["max_position_embeddings"] = 64,
            ["bos_token_id"] = 1,
            ["eos_token_id"] = 2,
            ["pad_token_id"] = 0,
            ["torch_dtype"] = "float32",
        };
        if (modelType != "gemma")
        {
            json["query_pre_attn_scalar"] = 24;
            json["sliding_window"] = 3;
        }
        if (modelType == "gemma2")
        {
            json["attn_logit_softcapping"] = 2.0;
            json["final_logit_softcapping"] = 3.0;
        }
        if (modelType == "gemma3_text")
        {
            json["sliding_window_pattern"] = 3;
            json["rope_local_base_freq"] = 100.0;
            json["rope_scaling"] = new JsonObject { ["rope_type"] = "linear", ["factor"] = 4.0 };
            json["attn_logit_softcapping"] = null;
            json["final_logit_softcapping"] = null;
        }
        if (tied is { } value)
            json["tie_word_embeddings"] = value;
        return json;
    }

    /// <summary>Phi-3's short and long rope factors in <see cref="Phi3ConfigJson"/> (two rotary frequencies).</summary>
    public static readonly double[] Phi3Short = [1.0, 1.5], Phi3Long = [2.0, 5.0];

    /// <summary>
    /// A tiny Phi-3: fused qkv_proj and gate_up_proj, grouped-query attention; with <paramref name="longRope"/> half of
    /// each head rotates (partial_rotary_factor 0.5) with longrope over an original length of 8 (max 32), else a
    /// 4-token sliding window and full rotation.
    /// </summary>
    public static JsonObject Phi3ConfigJson(bool longRope = true)
    {
        var json = ConfigJson();
        json["model_type"] = "phi3";
        json["architectures"] = new JsonArray("Phi3ForCausalLM");
        json["max_position_embeddings"] = 32;
        json["original_max_position_embeddings"] = 8;
        json["sliding_window"] = longRope ? null : 4;
        if (longRope)
        {
            json["partial_rotary_factor"] = 0.5;
            json["rope_scaling"] = new JsonObject
            {
                ["type"] = "longrope",
                ["short_factor"] = new JsonArray(Phi3Short.Select(f => (JsonNode)f).ToArray()),
                ["long_factor"] = new JsonArray(Phi3Long.Select(f => (JsonNode)f).ToArray()),
            };
        }
        return json;
    }

    /// <summary>
    /// A model of the config with seeded random weights (norm weights and biases too, so that they matter). Every draw
    /// comes from a local generator: tests run in parallel, and TorchSharp's global generator is shared by all threads.
    /// </summary>
    public static LlamaForCausalLM Random(JsonObject json, long seed = 7)
    {
        var model = new LlamaForCausalLM(DecoderConfig.FromJson(json));
        model.InitializeWeights(std: 0.1, seed: seed);
        var generator = new Generator((ulong)seed + 1);
        using (no_grad())
            foreach (var (name, parameter) in model.named_parameters())
                if (LlamaForCausalLM.IsNormWeight(name) || name.EndsWith(".bias", StringComparison.Ordinal))
                    parameter.copy_(rand(parameter.shape, generator: generator).add(0.5));
        return model;
    }

    /// <summary>Writes a random model folder and returns its path.</summary>
    public string Folder(string name, JsonObject json, long seed = 7, long maxShardBytes = 5L << 30)
    {
        string folder = Path.Combine(Root, name);
        using LlamaForCausalLM model = Random(json, seed);
        model.SavePretrained(folder, maxShardBytes);
        return folder;
    }
}
