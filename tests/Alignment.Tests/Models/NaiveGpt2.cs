using Alignment.Models;
using static TorchSharp.torch;

namespace Alignment.Tests.Models;

/// <summary>
/// GPT-2's forward pass written out token by token and head by head in double precision from the GPT-2 paper and
/// transformers' modeling_gpt2 as documented: learned positions, LayerNorm with bias, Conv1D (<c>x·W + b</c>, W stored
/// [in, out]), fused q/k/v in that order, the tanh-approximated GELU, tied or untied head.
/// </summary>
internal static class NaiveGpt2
{
    public static double[][] Logits(LlamaForCausalLM model, long[] tokens)
    {
        var p = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value);
        DecoderConfig c = model.Config;
        int hidden = c.HiddenSize, heads = c.NumAttentionHeads, hd = hidden / heads;
        double[,] wte = Matrix(p["transformer.wte.weight"]), wpe = Matrix(p["transformer.wpe.weight"]);
        double[][] x = tokens.Select((t, i) => Enumerable.Range(0, hidden).Select(j => wte[t, j] + wpe[i, j]).ToArray()).ToArray();
        double[] Norm(double[] v, string name) => LayerNorm(v, Vec(p[name + ".weight"]), Vec(p[name + ".bias"]), c.RmsNormEps);
        double[] Conv1D(double[] v, string name) => Conv(Matrix(p[name + ".weight"]), v, Vec(p[name + ".bias"]));

        for (int layer = 0; layer < c.NumHiddenLayers; layer++)
        {
            string pre = $"transformer.h.{layer}.";
            double[][] qkv = x.Select(v => Conv1D(Norm(v, pre + "ln_1"), pre + "attn.c_attn")).ToArray();
            double scale = 1 / Math.Sqrt(hd) / (c.ScaleAttentionByInverseLayerIdx ? layer + 1 : 1);
            var next = new double[tokens.Length][];
            for (int t = 0; t < tokens.Length; t++)
            {
                var attended = new double[hidden];
                for (int h = 0; h < heads; h++)
                {
                    double Q(int d) => qkv[t][h * hd + d];
                    double K(int j, int d) => qkv[j][hidden + h * hd + d];
                    double V(int j, int d) => qkv[j][2 * hidden + h * hd + d];
                    double[] scores = Enumerable.Range(0, t + 1).Select(j => Enumerable.Range(0, hd).Sum(d => Q(d) * K(j, d)) * scale).ToArray();
                    double max = scores.Max();
                    double[] weights = scores.Select(s => Math.Exp(s - max)).ToArray();
                    double total = weights.Sum();
                    for (int j = 0; j <= t; j++)
                        for (int d = 0; d < hd; d++)
                            attended[h * hd + d] += weights[j] / total * V(j, d);
                }
                double[] residual = x[t].Zip(Conv1D(attended, pre + "attn.c_proj"), (a, b) => a + b).ToArray();
                double[] inner = Conv1D(Norm(residual, pre + "ln_2"), pre + "mlp.c_fc").Select(GeluNew).ToArray();
                next[t] = residual.Zip(Conv1D(inner, pre + "mlp.c_proj"), (a, b) => a + b).ToArray();
            }
            x = next;
        }
        double[,] head = Matrix(p.TryGetValue("lm_head.weight", out Tensor? w) ? w : p["transformer.wte.weight"]); // [V, H]
        return x.Select(v =>
        {
            double[] normed = Norm(v, "transformer.ln_f");
            return Enumerable.Range(0, c.VocabSize).Select(i => Enumerable.Range(0, hidden).Sum(j => head[i, j] * normed[j])).ToArray();
        }).ToArray();
    }

    /// <summary>0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).</summary>
    static double GeluNew(double x) => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));

    static double[] LayerNorm(double[] x, double[] weight, double[] bias, double eps)
    {
        double mean = x.Average(), variance = x.Select(v => (v - mean) * (v - mean)).Average();
        return x.Select((v, i) => (v - mean) / Math.Sqrt(variance + eps) * weight[i] + bias[i]).ToArray();
    }

    /// <summary>Conv1D: y_j = Σ_i x_i·W[i, j] + b_j.</summary>
    static double[] Conv(double[,] w, double[] x, double[] bias) =>
        Enumerable.Range(0, w.GetLength(1)).Select(j => bias[j] + Enumerable.Range(0, x.Length).Sum(i => x[i] * w[i, j])).ToArray();

    internal static double[,] Matrix(Tensor t)
    {
        double[] flat = Vec(t);
        long rows = t.shape[0], cols = t.shape[1];
        var m = new double[rows, cols];
        for (long i = 0; i < rows; i++)
            for (long j = 0; j < cols; j++)
                m[i, j] = flat[i * cols + j];
        return m;
    }

    internal static double[] Vec(Tensor t) => t.to_type(ScalarType.Float64).contiguous().data<double>().ToArray();
}
