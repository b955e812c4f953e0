using Alignment.Models.Decoder;
using System.Text.Json.Nodes;
using Alignment.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Tests.Models;

public sealed class LlamaForCausalLMTests : IDisposable
{
    readonly TinyModels _models = new();

    public void Dispose() => _models.Dispose();

    static double[,] Matrix(Tensor t)
    {
        double[] flat = t.to_type(ScalarType.Float64).contiguous().data<double>().ToArray();
        long rows = t.shape[0], cols = t.dim() == 1 ? 1 : t.shape[1];
        var m = new double[rows, cols];
        for (long i = 0; i < rows; i++)
            for (long j = 0; j < cols; j++)
                m[i, j] = flat[i * cols + j];
        return m;
    }

    static double[] Vec(Tensor t) => t.to_type(ScalarType.Float64).contiguous().data<double>().ToArray();

    static double[] MatVec(double[,] w, double[] x, double[]? bias = null)
    {
        var y = new double[w.GetLength(0)];
        for (int i = 0; i < y.Length; i++)
        {
            double sum = bias?[i] ?? 0;
            for (int j = 0; j < x.Length; j++)
                sum += w[i, j] * x[j];
            y[i] = sum;
        }
        return y;
    }

    static double[] RmsNorm(double[] x, double[] weight, double eps)
    {
        double meanSquare = x.Select(v => v * v).Average();
        double scale = 1 / Math.Sqrt(meanSquare + eps);
        return x.Select((v, i) => weight[i] * v * scale).ToArray();
    }

    /// <summary>Inverse rotary frequencies written out from the Llama / Llama 3 papers' definitions.</summary>
    static double[] InverseFrequencies(JsonObject built, int headDim)
    {
        JsonObject json = JsonNode.Parse(built.ToJsonString())!.AsObject(); // typed values → parsed numbers
        double theta = json["rope_theta"]!.GetValue<double>();
        double[] inverse = Enumerable.Range(0, headDim / 2).Select(i => 1 / Math.Pow(theta, 2.0 * i / headDim)).ToArray();
        if (json["rope_scaling"] is not JsonObject s)
            return inverse;
        double factor = s["factor"]!.GetValue<double>(), low = s["low_freq_factor"]!.GetValue<double>(), high = s["high_freq_factor"]!.GetValue<double>();
        double original = s["original_max_position_embeddings"]!.GetValue<double>();
        return inverse.Select(f =>
        {
            double wavelength = 2 * Math.PI / f;
            if (wavelength < original / high) return f;            // high frequency: kept
            if (wavelength > original / low) return f / factor;    // low frequency: scaled
            double smooth = (original / wavelength - low) / (high - low);
            return (1 - smooth) * f / factor + smooth * f;         // in between: interpolated
        }).ToArray();
    }

    /// <summary>A token-by-token, head-by-head re-implementation of the Llama forward pass in double precision.</summary>
    static double[][] NaiveLogits(LlamaForCausalLM model, JsonObject json, long[] tokens)
    {
        var p = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value);
        DecoderConfig c = model.Config;
        int heads = c.NumAttentionHeads, kvHeads = c.NumKeyValueHeads, hd = c.HeadDim, half = hd / 2;
        double[] inverse = InverseFrequencies(json, hd);
        double[,] embed = Matrix(p["model.embed_tokens.weight"]);
        double[][] x = tokens.Select(t => Enumerable.Range(0, c.HiddenSize).Select(j => embed[t, j]).ToArray()).ToArray();
        double[]? Bias(string name) => p.TryGetValue(name, out Tensor? b) ? Vec(b) : null;

        double[] Rope(double[] v, int head, int position)
        {
            var r = (double[])v.Clone();
            for (int i = 0; i < half; i++)
            {
                double angle = position * inverse[i], a = v[head * hd + i], b = v[head * hd + i + half];
                r[head * hd + i] = a * Math.Cos(angle) - b * Math.Sin(angle);
                r[head * hd + i + half] = b * Math.Cos(angle) + a * Math.Sin(angle);
            }
            return r;
        }

        for (int layer = 0; layer < c.NumHiddenLayers; layer++)
        {
            string pre = $"model.layers.{layer}.";
            double[][] normed = x.Select(v => RmsNorm(v, Vec(p[pre + "input_layernorm.weight"]), c.RmsNormEps)).ToArray();
            double[][] q = normed.Select(v => MatVec(Matrix(p[pre + "self_attn.q_proj.weight"]), v, Bias(pre + "self_attn.q_proj.bias"))).ToArray();
            double[][] k = normed.Select(v => MatVec(Matrix(p[pre + "self_attn.k_proj.weight"]), v, Bias(pre + "self_attn.k_proj.bias"))).ToArray();
            double[][] v = normed.Select(v => MatVec(Matrix(p[pre + "self_attn.v_proj.weight"]), v, Bias(pre + "self_attn.v_proj.bias"))).ToArray();
            if (p.TryGetValue(pre + "self_attn.q_norm.weight", out Tensor? qNorm)) // Qwen3: RMSNorm of each head's query and key
            {
                double[] HeadNorm(double[] x, int h, double[] w) => RmsNorm(x[(h * hd)..((h + 1) * hd)], w, c.RmsNormEps);
                double[] qw = Vec(qNorm), kw = Vec(p[pre + "self_attn.k_norm.weight"]);
                q = q.Select(x => Enumerable.Range(0, heads).SelectMany(h => HeadNorm(x, h, qw)).ToArray()).ToArray();
                k = k.Select(x => Enumerable.Range(0, kvHeads).SelectMany(h => HeadNorm(x, h, kw)).ToArray()).ToArray();
            }
            for (int t = 0; t < tokens.Length; t++)
            {
                for (int h = 0; h < heads; h++) q[t] = Rope(q[t], h, t);
                for (int h = 0; h < kvHeads; h++) k[t] = Rope(k[t], h, t);
            }
            var next = new double[tokens.Length][];
            for (int t = 0; t < tokens.Length; t++)
            {
                var attended = new double[heads * hd];
                int first = c.SlidingWindow is { } window ? Math.Max(0, t - window + 1) : 0; // Mistral: keys with t − j < window
                for (int h = 0; h < heads; h++)
                {
                    int g = h / (heads / kvHeads);
                    double[] scores = Enumerable.Range(first, t + 1 - first).Select(j =>
                        Enumerable.Range(0, hd).Sum(d => q[t][h * hd + d] * k[j][g * hd + d]) / Math.Sqrt(hd)).ToArray();
                    double max = scores.Max();
                    double[] weights = scores.Select(s => Math.Exp(s - max)).ToArray();
                    double total = weights.Sum();
                    for (int j = first; j <= t; j++)
                        for (int d = 0; d < hd; d++)
                            attended[h * hd + d] += weights[j - first] / total * v[j][g * hd + d];
                }
                double[] o = MatVec(Matrix(p[pre + "self_attn.o_proj.weight"]), attended, Bias(pre + "self_attn.o_proj.bias"));
                double[] residual = x[t].Zip(o, (a, b) => a + b).ToArray();
                double[] n2 = RmsNorm(residual, Vec(p[pre + "post_attention_layernorm.weight"]), c.RmsNormEps);
                double[] gate = MatVec(Matrix(p[pre + "mlp.gate_proj.weight"]), n2);
                double[] up = MatVec(Matrix(p[pre + "mlp.up_proj.weight"]), n2);
                double[] act = gate.Select((z, i) => z / (1 + Math.Exp(-z)) * up[i]).ToArray();
                double[] down = MatVec(Matrix(p[pre + "mlp.down_proj.weight"]), act);
                next[t] = residual.Zip(down, (a, b) => a + b).ToArray();
            }
            x = next;
        }
        double[,] head = Matrix(p.TryGetValue("lm_head.weight", out Tensor? w) ? w : p["model.embed_tokens.weight"]);
        return x.Select(v => MatVec(head, RmsNorm(v, Vec(p["model.norm.weight"]), c.RmsNormEps))).ToArray();
    }

    /// <summary>Whether two tensors start at the same native address (share their storage).</summary>
    internal static bool SameStorage(Tensor a, Tensor b) =>
        System.Runtime.CompilerServices.Unsafe.AreSame(
            ref System.Runtime.InteropServices.MemoryMarshal.GetReference(a.bytes),
            ref System.Runtime.InteropServices.MemoryMarshal.GetReference(b.bytes));

    public static TheoryData<string> Architectures => new() { "llama", "qwen2_tied", "llama3_rope", "qwen3", "mistral_window", "gpt2", "gpt2_untied_inverse_scale",
        "gemma", "gemma2", "gemma3", "gemma3_untied", "phi3", "phi3_longrope" };

    internal static JsonObject ConfigFor(string architecture) => architecture switch
    {
        "gpt2" => TinyModels.Gpt2ConfigJson(),
        "phi3" => TinyModels.Phi3ConfigJson(longRope: false),
        "phi3_longrope" => TinyModels.Phi3ConfigJson(),
        "gemma" => TinyModels.GemmaConfigJson("gemma"),
        "gemma2" => TinyModels.GemmaConfigJson(),
        "gemma3" => TinyModels.GemmaConfigJson("gemma3_text"),
        "gemma3_untied" => TinyModels.GemmaConfigJson("gemma3_text", tied: false),
        "mistral_window" => TinyModels.ConfigJson("mistral").With("sliding_window", 3),
        "gpt2_untied_inverse_scale" => TinyModels.Gpt2ConfigJson(tied: false, layers: 3, inverseLayerScale: true),
        "qwen2_tied" => TinyModels.ConfigJson("qwen2", tied: true),
        "qwen3" => TinyModels.ConfigJson("qwen3", tied: true).With("head_dim", 16), // heads × head_dim ≠ hidden, as Qwen3's
        "llama3_rope" => TinyModels.ConfigJson(ropeScaling: new JsonObject
        {
            ["rope_type"] = "llama3", ["factor"] = 8.0, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0,
            ["original_max_position_embeddings"] = 16,
        }),
        _ => TinyModels.ConfigJson(),
    };

    [Theory]
    [MemberData(nameof(Architectures))]
    public void Logits_equal_a_naive_per_token_reimplementation(string architecture)
    {
        using var scope = NewDisposeScope();
        JsonObject json = ConfigFor(architecture);
        using LlamaForCausalLM model = TinyModels.Random(json);
        model.to(ScalarType.Float64);
        long[] tokens = [1, 5, 63, 17, 8, 8, 40, 2, 33, 12];

        Tensor logits = model.Logits(model.Forward(tensor(tokens).unsqueeze(0)))[0];
        double[][] expected = architecture.StartsWith("gpt2") ? NaiveGpt2.Logits(model, tokens)
            : architecture.StartsWith("gemma") ? NaiveGemma.Logits(model, tokens)
            : architecture == "phi3_longrope" ? NaivePhi3.Logits(model, tokens, TinyModels.Phi3Short, TinyModels.Phi3Long, original: 8)
            : architecture == "phi3" ? NaivePhi3.Logits(model, tokens) : NaiveLogits(model, json, tokens);

        AssertNaive(expected, logits, architecture);
    }

    /// <summary>
    /// Every logit within 1e-5 of the naive one. Transformers computes rotary angles in float32 whatever the model's
    /// dtype, and so does this model; the naive versions use exact angles, so agreement is to float32 angle rounding
    /// (~1e-7 relative), not to float64.
    /// </summary>
    static void AssertNaive(double[][] expected, Tensor logits, string label)
    {
        for (int t = 0; t < expected.Length; t++)
            for (int v = 0; v < expected[t].Length; v++)
                Assert.True(Math.Abs(expected[t][v] - logits[t, v].item<double>()) < 1e-5,
                    $"{label}: logits[{t}, {v}] = {logits[t, v].item<double>()}, naive {expected[t][v]}");
    }

    [Theory]
    [InlineData(6)]  // within original_max_position_embeddings: short factors
    [InlineData(8)]
    [InlineData(9)]  // past it: long factors
    [InlineData(12)]
    public void Phi3_longrope_switches_to_the_long_factors_past_the_original_length(int length)
    {
        using var scope = NewDisposeScope();
        using LlamaForCausalLM model = TinyModels.Random(TinyModels.Phi3ConfigJson());
        model.to(ScalarType.Float64);
        long[] tokens = Enumerable.Range(0, length).Select(i => (long)(i * 7 % 64)).ToArray();
        Tensor logits = model.Logits(model.Forward(tensor(tokens).unsqueeze(0)))[0];
        AssertNaive(NaivePhi3.Logits(model, tokens, TinyModels.Phi3Short, TinyModels.Phi3Long, original: 8), logits, $"phi3 longrope, {length} tokens");
    }

    [Theory]
    [InlineData("llama", false)]
    [InlineData("llama", true)]
    [InlineData("gpt2", false)]
    [InlineData("gpt2", true)]
    [InlineData("gemma2", true)]
    [InlineData("gemma3", false)]
    [InlineData("gemma3", true)]
    [InlineData("phi3_longrope", true)]
    [InlineData("phi3", false)]
    public void Padded_batches_give_the_same_per_token_results_as_unpadded_sequences(string architecture, bool leftPadding)
    {
        using var scope = NewDisposeScope();
        using LlamaForCausalLM model = TinyModels.Random(ConfigFor(architecture));
        long[][] sequences = [[1, 5, 9, 13, 22, 40], [1, 7, 3, 60]];
        long width = sequences.Max(s => s.Length);
        var ids = new long[sequences.Length, width];
        var mask = new long[sequences.Length, width];
        for (int b = 0; b < sequences.Length; b++)
        {
            long offset = leftPadding ? width - sequences[b].Length : 0;
            for (int t = 0; t < sequences[b].Length; t++)
            {
                ids[b, offset + t] = sequences[b][t];
                mask[b, offset + t] = 1;
            }
        }
        Tensor batched = model.Forward(tensor(ids), tensor(mask));

        for (int b = 0; b < sequences.Length; b++)
        {
            Tensor alone = model.Forward(tensor(sequences[b]).unsqueeze(0))[0];
            long offset = leftPadding ? width - sequences[b].Length : 0;
            Tensor slice = batched[b].narrow(0, offset, sequences[b].Length);
            Assert.True(slice.allclose(alone, rtol: 0, atol: 1e-5), $"sequence {b}: largest difference {slice.sub(alone).abs().max().item<float>()}");
        }
    }

    [Theory]
    [InlineData("llama", null)]
    [InlineData("llama", 7)]
    [InlineData("llama", 20)]
    [InlineData("gpt2", null)]
    [InlineData("gpt2", 7)]
    [InlineData("gemma2", null)]
    [InlineData("gemma3", 7)]
    [InlineData("phi3_longrope", null)]
    [InlineData("phi3", 7)]
    public void Decoding_with_the_kv_cache_equals_a_full_forward(string architecture, int? staticLength)
    {
        using var scope = NewDisposeScope();
        using LlamaForCausalLM model = TinyModels.Random(ConfigFor(architecture));
        Tensor ids = tensor(new long[] { 1, 5, 9, 13, 22, 40, 7 }).unsqueeze(0);
        Tensor full = model.Forward(ids);

        using var cache = staticLength is { } length ? new KvCache(model.Config.NumHiddenLayers, length) : new KvCache(model.Config.NumHiddenLayers);
        Tensor prefix = model.Forward(ids.narrow(1, 0, 4), cache: cache);
        Assert.True(prefix.allclose(full.narrow(1, 0, 4), rtol: 0, atol: 1e-5));
        for (int t = 4; t < 7; t++)
        {
            Tensor step = model.Forward(ids.narrow(1, t, 1), cache: cache);
            Assert.True(step[0, 0].allclose(full[0, t], rtol: 0, atol: 1e-5), $"position {t}");
        }
        Assert.Equal(7, cache.Length);
        if (staticLength == 7)
            Assert.Contains("room for 7 positions; 8", Assert.Throws<InvalidOperationException>(() => model.Forward(ids.narrow(1, 0, 1), cache: cache)).Message);
    }

    [Theory]
    [InlineData("llama", null)]
    [InlineData("llama", ScalarType.BFloat16)]
    [InlineData("gpt2", null)]
    [InlineData("gpt2_untied_inverse_scale", ScalarType.BFloat16)]
    [InlineData("gemma2", null)]
    [InlineData("gemma3_untied", ScalarType.BFloat16)]
    [InlineData("phi3_longrope", null)]
    public void Load_save_load_is_bit_identical(string architecture, ScalarType? dtype)
    {
        using var scope = NewDisposeScope();
        string source = _models.Folder("source", ConfigFor(architecture));
        using var first = LlamaForCausalLM.FromPretrained(source, new ModelLoadOptions { DType = dtype });
        string copy = Path.Combine(_models.Root, "copy");
        first.SavePretrained(copy);
        using var second = LlamaForCausalLM.FromPretrained(copy, new ModelLoadOptions { DType = dtype });

        var a = first.state_dict();
        var b = second.state_dict();
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (name, tensor) in a)
            Assert.True(tensor.bytes.SequenceEqual(b[name].bytes), $"{name} differs after the round trip");
        Assert.Equal(dtype == ScalarType.BFloat16 ? "bfloat16" : "float32", JsonNode.Parse(File.ReadAllText(Path.Combine(copy, "config.json")))!["torch_dtype"]!.GetValue<string>());
    }

    [Fact]
    public void Sharded_and_single_file_checkpoints_load_the_same_weights()
    {
        using var scope = NewDisposeScope();
        string single = _models.Folder("single", TinyModels.ConfigJson(), seed: 11);
        string sharded = _models.Folder("sharded", TinyModels.ConfigJson(), seed: 11, maxShardBytes: 16_000);
        Assert.True(File.Exists(Path.Combine(sharded, SafeTensorsCheckpoint.IndexFileName)));
        Assert.True(Directory.GetFiles(sharded, "model-*-of-*.safetensors").Length > 2);
        Assert.False(File.Exists(Path.Combine(sharded, SafeTensorsCheckpoint.SingleFileName)));

        using var a = LlamaForCausalLM.FromPretrained(single);
        using var b = LlamaForCausalLM.FromPretrained(sharded);
        foreach (var (name, tensor) in a.state_dict())
            Assert.True(tensor.bytes.SequenceEqual(b.state_dict()[name].bytes), name);
    }

    [Fact]
    public void Tied_embeddings_are_one_parameter_and_are_saved_once()
    {
        using var scope = NewDisposeScope();
        string folder = _models.Folder("tied", TinyModels.ConfigJson(tied: true));
        using var model = LlamaForCausalLM.FromPretrained(folder);
        Assert.DoesNotContain(model.named_parameters(), p => p.name == "lm_head.weight");
        Assert.True(SameStorage(model.LmHeadWeight, model.state_dict()["model.embed_tokens.weight"]));
        using var checkpoint = SafeTensorsCheckpoint.Open(folder);
        Assert.DoesNotContain("lm_head.weight", checkpoint.Entries.Keys);
    }

    [Fact]
    public void Weights_that_do_not_fit_are_all_listed()
    {
        using var scope = NewDisposeScope();
        using LlamaForCausalLM model = TinyModels.Random(TinyModels.ConfigJson());
        var tensors = model.state_dict().Where(kv => kv.Key != "model.norm.weight")
            .Select(kv => kv.Key == "lm_head.weight" ? new KeyValuePair<string, Tensor>(kv.Key, zeros(3, 3)) : kv)
            .Append(new("model.extra.weight", zeros(2)))
            .ToList();
        string folder = Path.Combine(_models.Root, "broken");
        SafeTensorsCheckpoint.Save(folder, tensors);
        TinyModels.ConfigJson().ToJsonString().Let(json => File.WriteAllText(Path.Combine(folder, "config.json"), json));

        var error = Assert.Throws<InvalidDataException>(() => LlamaForCausalLM.FromPretrained(folder));
        Assert.Contains("missing: model.norm.weight", error.Message);
        Assert.Contains("unexpected: model.extra.weight", error.Message);
        Assert.Contains("wrong shape: lm_head.weight is [3, 3]", error.Message);
    }
}

internal static class FluentExtensions
{
    public static void Let<T>(this T value, Action<T> action) => action(value);

    /// <summary>The object with one more field.</summary>
    public static JsonObject With(this JsonObject json, string name, JsonNode? value)
    {
        json[name] = value;
        return json;
    }
}

public sealed class InitializeWeightsTests
{
    [Fact]
    public void From_scratch_initialisation_follows_transformers()
    {
        var json = TinyModels.ConfigJson("qwen2");
        using var model = new LlamaForCausalLM(DecoderConfig.FromJson(json));
        model.InitializeWeights(std: 0.02, seed: 3);
        foreach (var (name, p) in model.named_parameters())
        {
            float[] values = p.detach().data<float>().ToArray();
            if (name.EndsWith("norm.weight"))
                Assert.All(values, v => Assert.Equal(1f, v));
            else if (name.EndsWith(".bias"))
                Assert.All(values, v => Assert.Equal(0f, v));
            else if (values.Length > 500)
            {
                double mean = values.Average(), std = Math.Sqrt(values.Average(v => (v - mean) * (v - mean)));
                Assert.InRange(std, 0.018, 0.022);
            }
        }
    }
}
