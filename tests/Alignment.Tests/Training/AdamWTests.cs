using Alignment.Training;
using TorchSharp;
using TorchSharp.Modules;
using AdamW = Alignment.Training.AdamW;
using static TorchSharp.torch;

namespace Alignment.Tests.Training;

public sealed class AdamWTests
{
    /// <summary>Gradient of step <paramref name="step"/>: a fixed function of the step, the same for both optimizers.</summary>
    static Tensor GradientAt(int step, long[] shape) =>
        sin(arange(0, shape.Aggregate(1L, (a, b) => a * b), dtype: ScalarType.Float64).mul(0.7 + step)).mul(1 + step % 3).reshape(shape);

    [Fact]
    public void Updates_equal_torch_optim_AdamW_step_by_step()
    {
        using var ours = new Parameter(linspace(-1, 1, 12, dtype: ScalarType.Float32).reshape(3, 4));
        using var theirs = new Parameter(ours.detach().clone());
        using var optimizer = new AdamW([("w", ours)], learningRate: 0.05, weightDecay: 0.1);
        using var reference = optim.AdamW([theirs], lr: 0.05, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.1);
        for (int step = 0; step < 6; step++)
        {
            using Tensor gradient = GradientAt(step, [3, 4]).to_type(ScalarType.Float32);
            ours.grad = gradient.clone();
            theirs.grad = gradient.clone();
            optimizer.LearningRate = 0.05 * (6 - step) / 6; // the engine changes it each step
            foreach (var group in reference.ParamGroups)
                group.LearningRate = 0.05 * (6 - step) / 6;
            optimizer.Step();
            reference.step();
            optimizer.ZeroGrad();
            Assert.True(ours.allclose(theirs, rtol: 1e-6, atol: 1e-7), $"step {step}");
            Assert.Null(ours.grad);
        }
    }

    [Theory]
    [InlineData(5)]  // 12 elements in slices of 5, 5 and 2
    [InlineData(1)]
    [InlineData(64)] // one slice larger than the parameter
    public void Updates_in_slices_equal_torch_optim_AdamW_whole_parameters_and_a_transposed_gradient(long slice)
    {
        using var ours = new Parameter(linspace(-1, 1, 12, dtype: ScalarType.Float32).reshape(3, 4));
        using var bias = new Parameter(linspace(0.5, 1, 3, dtype: ScalarType.Float32));
        using var theirs = new Parameter(ours.detach().clone());
        using var theirBias = new Parameter(bias.detach().clone());
        using var optimizer = new AdamW([("w", ours), ("b", bias)], learningRate: 0.05, weightDecay: 0.1, sliceElements: slice);
        using var reference = optim.AdamW([theirs, theirBias], lr: 0.05, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.1);
        for (int step = 0; step < 5; step++)
        {
            using Tensor gradient = GradientAt(step, [3, 4]).to_type(ScalarType.Float32);
            // Every other step the gradient is a transposed view (not contiguous): the whole-tensor path takes it.
            ours.grad = step % 2 == 0 ? gradient.clone() : gradient.t().contiguous().t();
            theirs.grad = gradient.clone();
            bias.grad = GradientAt(step + 7, [3]).to_type(ScalarType.Float32);
            theirBias.grad = bias.grad.clone();
            optimizer.Step();
            reference.step();
            optimizer.ZeroGrad();
            Assert.True(ours.allclose(theirs, rtol: 1e-6, atol: 1e-7), $"weight, step {step}");
            Assert.True(bias.allclose(theirBias, rtol: 1e-6, atol: 1e-7), $"bias, step {step}");
        }
    }

    [Fact]
    public void A_bfloat16_parameter_updated_in_slices_equals_the_whole_update()
    {
        using var sliced = new Parameter(linspace(-1, 1, 10, dtype: ScalarType.BFloat16));
        using var whole = new Parameter(sliced.detach().clone());
        using var a = new AdamW([("w", sliced)], 0.01, 0.1, sliceElements: 3);
        using var b = new AdamW([("w", whole)], 0.01, 0.1, sliceElements: 1 << 20);
        for (int step = 0; step < 4; step++)
        {
            sliced.grad = GradientAt(step, [10]).to_type(ScalarType.BFloat16);
            whole.grad = sliced.grad.clone();
            a.Step();
            b.Step();
        }
        Assert.True(sliced.to_type(ScalarType.Float32).equal(whole.to_type(ScalarType.Float32)).all().item<bool>());
    }

    [Fact]
    public void Updates_equal_the_formula_worked_in_double()
    {
        double[] p = [0.5, -0.25], m = new double[2], v = new double[2];
        const double lr = 0.01, decay = 0.05;
        using var parameter = new Parameter(tensor(p.Select(x => (float)x).ToArray()));
        using var optimizer = new AdamW([("p", parameter)], lr, decay);
        for (int t = 1; t <= 4; t++)
        {
            double[] g = [Math.Sin(t), Math.Cos(3 * t)];
            parameter.grad = tensor(g.Select(x => (float)x).ToArray());
            optimizer.Step();
            for (int i = 0; i < 2; i++)
            {
                p[i] *= 1 - lr * decay;
                m[i] = 0.9 * m[i] + 0.1 * g[i];
                v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
                p[i] -= lr / (1 - Math.Pow(0.9, t)) * m[i] / (Math.Sqrt(v[i]) / Math.Sqrt(1 - Math.Pow(0.999, t)) + 1e-8);
            }
        }
        float[] got = parameter.data<float>().ToArray();
        Assert.Equal(p[0], got[0], 6);
        Assert.Equal(p[1], got[1], 6);
    }

    [Fact]
    public void A_bfloat16_parameter_keeps_updates_smaller_than_its_resolution_in_a_float32_master_copy()
    {
        // 1.0 in bfloat16 has a resolution of 2^-7 ≈ 0.0078: one update of 1e-3 rounds away, a hundred of them do not.
        using var parameter = new Parameter(ones(4, ScalarType.BFloat16));
        using var optimizer = new AdamW([("w", parameter)], learningRate: 1e-3, weightDecay: 0);
        for (int step = 0; step < 100; step++)
        {
            parameter.grad = full(4, -1.0, ScalarType.BFloat16); // Adam's step is lr · sign(g) for a constant gradient
            optimizer.Step();
            optimizer.ZeroGrad();
        }
        Assert.Equal(ScalarType.BFloat16, parameter.dtype);
        float value = parameter.to_type(ScalarType.Float32).data<float>()[0];
        Assert.InRange(value, 1.1 - 2e-3 - 0.008, 1.1 + 0.008); // 1 + 100 · 1e-3, to bfloat16's resolution near 1.1
        Assert.True(optimizer.StateBytes == 4 * 4 * 3, "two float32 moments and a float32 master copy");
    }

    [Fact]
    public void Saved_state_loads_into_a_new_optimizer_and_continues_identically()
    {
        string path = Path.Combine(Directory.CreateTempSubdirectory("alignment-adamw-").FullName, "optimizer.safetensors");
        using var first = new Parameter(ones(5, ScalarType.BFloat16));
        using var second = new Parameter(ones(5, ScalarType.BFloat16));
        using var a = new AdamW([("w", first)], 0.01, 0.1);
        using var b = new AdamW([("w", second)], 0.01, 0.1);
        for (int step = 0; step < 3; step++)
        {
            first.grad = GradientAt(step, [5]).to_type(ScalarType.BFloat16);
            a.Step();
        }
        a.Save(path);
        using (no_grad())
            second.copy_(first);
        b.Load(path);
        first.grad = GradientAt(3, [5]).to_type(ScalarType.BFloat16);
        second.grad = GradientAt(3, [5]).to_type(ScalarType.BFloat16);
        a.Step();
        b.Step();
        Assert.True(first.to_type(ScalarType.Float32).equal(second.to_type(ScalarType.Float32)).all().item<bool>());
        Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
    }

    [Fact]
    public void State_written_for_other_parameters_is_refused_naming_the_file_and_entry()
    {
        string path = Path.Combine(Directory.CreateTempSubdirectory("alignment-adamw-").FullName, "optimizer.safetensors");
        using var small = new Parameter(ones(3));
        using var large = new Parameter(ones(4));
        using (var a = new AdamW([("w", small)], 0.01, 0))
            a.Save(path);
        using var b = new AdamW([("w", large)], 0.01, 0);
        var error = Assert.Throws<InvalidDataException>(() => b.Load(path));
        Assert.Contains(path, error.Message);
        Assert.Contains("exp_avg.w", error.Message);
        Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
    }
}
