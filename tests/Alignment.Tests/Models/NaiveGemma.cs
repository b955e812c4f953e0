using Alignment.Models;
using static TorchSharp.torch;

namespace Alignment.Tests.Models;

/// <summary>
/// Gemma 1/2/3's forward pass token by token in double precision, from the Gemma papers and transformers' modeling
/// files as documented: embeddings × √hidden, RMSNorm × (1 + weight), sandwich norms (2, 3), GeGLU with tanh GELU,
/// scores × query_pre_attn_scalar^−½, attention and final soft-capping (2), q/k norms (3), sliding windows on the
/// layers the config names, local and global rotary bases (3), linear rope scaling on global layers only.
/// </summary>
internal static class NaiveGemma
{
    public static double[][] Logits(LlamaForCausalLM model, long[] tokens)
    {
        var p = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value);
        DecoderConfig c = model.Config;
        int heads = c.NumAttentionHeads, kvHeads = c.NumKeyValueHeads, hd = c.HeadDim, half = hd / 2, n = tokens.Length;
        bool sandwich = c.ModelType != "gemma";
        double[,] embed = NaiveGpt2.Matrix(p["model.embed_tokens.weight"]);
        double[][] x = tokens.Select(t => Enumerable.Range(0, c.HiddenSize).Select(j => embed[t, j] * Math.Sqrt(c.HiddenSize)).ToArray()).ToArray();
        double[] Norm(double[] v, string name)
        {
            double[] w = NaiveGpt2.Vec(p[name]);
            double scale = 1 / Math.Sqrt(v.Select(e => e * e).Average() + c.RmsNormEps);
            return v.Select((e, i) => e * scale * (1 + w[i])).ToArray();
        }
        double[] Linear(double[] v, string name)
        {
            double[,] w = NaiveGpt2.Matrix(p[name]);
            return Enumerable.Range(0, w.GetLength(0)).Select(i => Enumerable.Range(0, v.Length).Sum(j => w[i, j] * v[j])).ToArray();
        }
        static double Gelu(double z) => 0.5 * z * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (z + 0.044715 * z * z * z)));
        static double Cap(double z, double? cap) => cap is { } c ? c * Math.Tanh(z / c) : z;

        for (int layer = 0; layer < c.NumHiddenLayers; layer++)
        {
            string pre = $"model.layers.{layer}.";
            bool sliding = c.SlidingWindow is not null && (c.LayerTypes is null || c.LayerTypes[layer] == "sliding_attention");
            double theta = sliding && c.RopeLocalBaseFreq is { } local ? local : c.RopeTheta;
            double factor = !sliding && c.RopeScaling is { Type: "linear" } scaling ? scaling.Factor : 1;
            double[] inverse = Enumerable.Range(0, half).Select(i => 1 / Math.Pow(theta, 2.0 * i / hd) / factor).ToArray();
            double[][] normed = x.Select(v => Norm(v, pre + "input_layernorm.weight")).ToArray();
            double[][] q = normed.Select(v => Linear(v, pre + "self_attn.q_proj.weight")).ToArray();
            double[][] k = normed.Select(v => Linear(v, pre + "self_attn.k_proj.weight")).ToArray();
            double[][] v = normed.Select(v => Linear(v, pre + "self_attn.v_proj.weight")).ToArray();
            double[] Head(double[] all, int h, string? norm, int position)
            {
                double[] head = all[(h * hd)..((h + 1) * hd)];
                if (norm is not null)
                    head = Norm(head, norm);
                var rotated = new double[hd];
                for (int i = 0; i < half; i++)
                {
                    double angle = position * inverse[i];
                    rotated[i] = head[i] * Math.Cos(angle) - head[i + half] * Math.Sin(angle);
                    rotated[i + half] = head[i + half] * Math.Cos(angle) + head[i] * Math.Sin(angle);
                }
                return rotated;
            }
            string? qNorm = c.QkNorm ? pre + "self_attn.q_norm.weight" : null, kNorm = c.QkNorm ? pre + "self_attn.k_norm.weight" : null;
            double scale = 1 / Math.Sqrt(c.QueryPreAttentionScalar ?? hd);
            var next = new double[n][];
            for (int t = 0; t < n; t++)
            {
                var attended = new double[heads * hd];
                int first = sliding ? Math.Max(0, t - c.SlidingWindow!.Value + 1) : 0;
                for (int h = 0; h < heads; h++)
                {
                    int g = h / (heads / kvHeads);
                    double[] query = Head(q[t], h, qNorm, t);
                    double[] scores = Enumerable.Range(first, t + 1 - first).Select(j =>
                    {
                        double[] key = Head(k[j], g, kNorm, j);
                        return Cap(Enumerable.Range(0, hd).Sum(d => query[d] * key[d]) * scale, c.AttentionLogitSoftcapping);
                    }).ToArray();
                    double max = scores.Max();
                    double[] weights = scores.Select(s => Math.Exp(s - max)).ToArray();
                    double total = weights.Sum();
                    for (int j = first; j <= t; j++)
                        for (int d = 0; d < hd; d++)
                            attended[h * hd + d] += weights[j - first] / total * v[j][g * hd + d];
                }
                double[] o = Linear(attended, pre + "self_attn.o_proj.weight");
                if (sandwich)
                    o = Norm(o, pre + "post_attention_layernorm.weight");
                double[] residual = x[t].Zip(o, (a, b) => a + b).ToArray();
                double[] input = Norm(residual, pre + (sandwich ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight"));
                double[] gate = Linear(input, pre + "mlp.gate_proj.weight"), up = Linear(input, pre + "mlp.up_proj.weight");
                double[] mlp = Linear(gate.Select((z, i) => Gelu(z) * up[i]).ToArray(), pre + "mlp.down_proj.weight");
                if (sandwich)
                    mlp = Norm(mlp, pre + "post_feedforward_layernorm.weight");
                next[t] = residual.Zip(mlp, (a, b) => a + b).ToArray();
            }
            x = next;
        }
        double[,] head = NaiveGpt2.Matrix(p.TryGetValue("lm_head.weight", out Tensor? w) ? w : p["model.embed_tokens.weight"]);
        return x.Select(v =>
        {
            double[] normed = Norm(v, "model.norm.weight");
            return Enumerable.Range(0, c.VocabSize).Select(i => Cap(Enumerable.Range(0, c.HiddenSize).Sum(j => head[i, j] * normed[j]), c.FinalLogitSoftcapping)).ToArray();
        }).ToArray();
    }
}
