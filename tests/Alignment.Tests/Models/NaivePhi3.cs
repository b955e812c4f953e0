using Alignment.Models;
using static TorchSharp.torch;

namespace Alignment.Tests.Models;

/// <summary>
/// Phi-3's forward pass token by token in double precision, from transformers' modeling_phi3 as documented: rows of
/// the fused <c>qkv_proj</c> are q, k, v in that order and <c>gate_up_proj</c>'s are gate then up; rotary embeddings
/// turn only the first ⌊head_dim · partial_rotary_factor⌋ dimensions; longrope divides each frequency by its short
/// factor, or by its long factor when the sequence reaches past original_max_position_embeddings, and scales cos and
/// sin by √(1 + ln(max/original) / ln original).
/// </summary>
internal static class NaivePhi3
{
    public static double[][] Logits(LlamaForCausalLM model, long[] tokens, double[]? shortFactor = null, double[]? longFactor = null, int original = 0)
    {
        var p = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value);
        DecoderConfig c = model.Config;
        int heads = c.NumAttentionHeads, kvHeads = c.NumKeyValueHeads, hd = c.HeadDim, n = tokens.Length;
        int rotary = (int)(hd * c.PartialRotaryFactor), half = rotary / 2;
        bool longRope = shortFactor is not null;
        double[]? factors = longRope ? n > original ? longFactor : shortFactor : null;
        double attention = longRope && c.MaxPositionEmbeddings > original
            ? Math.Sqrt(1 + Math.Log((double)c.MaxPositionEmbeddings / original) / Math.Log(original)) : 1;
        double[] inverse = Enumerable.Range(0, half).Select(i => 1 / Math.Pow(c.RopeTheta, 2.0 * i / rotary) / (factors?[i] ?? 1)).ToArray();
        double[,] embed = NaiveGpt2.Matrix(p["model.embed_tokens.weight"]);
        double[][] x = tokens.Select(t => Enumerable.Range(0, c.HiddenSize).Select(j => embed[t, j]).ToArray()).ToArray();
        double[] Norm(double[] v, string name)
        {
            double[] w = NaiveGpt2.Vec(p[name]);
            double scale = 1 / Math.Sqrt(v.Select(e => e * e).Average() + c.RmsNormEps);
            return v.Select((e, i) => e * scale * w[i]).ToArray();
        }
        double[] Linear(double[] v, string name)
        {
            double[,] w = NaiveGpt2.Matrix(p[name]);
            return Enumerable.Range(0, w.GetLength(0)).Select(i => Enumerable.Range(0, v.Length).Sum(j => w[i, j] * v[j])).ToArray();
        }
        double[] Rope(double[] head, int position)
        {
            var r = (double[])head.Clone();
            for (int i = 0; i < half; i++)
            {
                double angle = position * inverse[i], cos = Math.Cos(angle) * attention, sin = Math.Sin(angle) * attention;
                r[i] = head[i] * cos - head[i + half] * sin;
                r[i + half] = head[i + half] * cos + head[i] * sin;
            }
            return r;
        }

        for (int layer = 0; layer < c.NumHiddenLayers; layer++)
        {
            string pre = $"model.layers.{layer}.";
            double[][] qkv = x.Select(v => Linear(Norm(v, pre + "input_layernorm.weight"), pre + "self_attn.qkv_proj.weight")).ToArray();
            double[] Q(int t, int h) => Rope(qkv[t][(h * hd)..((h + 1) * hd)], t);
            double[] K(int t, int g) => Rope(qkv[t][((heads + g) * hd)..((heads + g + 1) * hd)], t);
            double[] V(int t, int g) => qkv[t][((heads + kvHeads + g) * hd)..((heads + kvHeads + g + 1) * hd)];
            var next = new double[n][];
            for (int t = 0; t < n; t++)
            {
                var attended = new double[heads * hd];
                int first = c.SlidingWindow is { } window ? Math.Max(0, t - window + 1) : 0;
                for (int h = 0; h < heads; h++)
                {
                    int g = h / (heads / kvHeads);
                    double[] query = Q(t, h);
                    double[] scores = Enumerable.Range(first, t + 1 - first)
                        .Select(j => K(j, g).Select((kd, d) => kd * query[d]).Sum() / Math.Sqrt(hd)).ToArray();
                    double max = scores.Max();
                    double[] weights = scores.Select(s => Math.Exp(s - max)).ToArray();
                    double total = weights.Sum();
                    for (int j = first; j <= t; j++)
                    {
                        double[] value = V(j, g);
                        for (int d = 0; d < hd; d++)
                            attended[h * hd + d] += weights[j - first] / total * value[d];
                    }
                }
                double[] residual = x[t].Zip(Linear(attended, pre + "self_attn.o_proj.weight"), (a, b) => a + b).ToArray();
                double[] gateUp = Linear(Norm(residual, pre + "post_attention_layernorm.weight"), pre + "mlp.gate_up_proj.weight");
                int inner = gateUp.Length / 2;
                double[] act = Enumerable.Range(0, inner).Select(i => gateUp[i] / (1 + Math.Exp(-gateUp[i])) * gateUp[inner + i]).ToArray();
                next[t] = residual.Zip(Linear(act, pre + "mlp.down_proj.weight"), (a, b) => a + b).ToArray();
            }
            x = next;
        }
        double[,] head = NaiveGpt2.Matrix(p.TryGetValue("lm_head.weight", out Tensor? w) ? w : p["model.embed_tokens.weight"]);
        return x.Select(v =>
        {
            double[] normed = Norm(v, "model.norm.weight");
            return Enumerable.Range(0, c.VocabSize).Select(i => Enumerable.Range(0, c.HiddenSize).Sum(j => head[i, j] * normed[j])).ToArray();
        }).ToArray();
    }
}
