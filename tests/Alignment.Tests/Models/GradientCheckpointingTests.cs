using Alignment.Kernels;
using Alignment.Losses;
using Alignment.Models;
using Alignment.Tests.Training;
using Alignment.Training;
using static TorchSharp.torch;

namespace Alignment.Tests.Models;

/// <summary>
/// Activation checkpointing recomputes each layer in backward: the gradients must be those of the plain run. These tests
/// seed TorchSharp's global generator (LoRA dropout draws from it), so they run alone.
/// </summary>
[Collection(nameof(MemoryMeasurement))]
public sealed class GradientCheckpointingTests
{
    /// <summary>Every trainable parameter's gradient after one forward/backward of a token log-prob loss, as float64 arrays.</summary>
    static Dictionary<string, double[]> Gradients(LlamaForCausalLM model, bool checkpointing)
    {
        using var scope = NewDisposeScope();
        model.train();
        model.GradientCheckpointing = checkpointing;
        foreach (var p in model.parameters())
            p.grad = null;
        var ids = tensor(new long[] { 1, 5, 9, 14, 3, 22, 7, 2, 1, 40, 41, 42, 43, 44, 2, 0 }).reshape(2, 8);
        var mask = tensor(new long[] { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0 }).reshape(2, 8);
        manual_seed(123); // the same dropout masks for both runs
        Tensor hidden = model.Forward(ids, mask);
        Tensor targets = ids.roll(-1, 1);
        TokenLogProbs.FromHidden(hidden, model.LmHeadWeight, targets, mask.roll(-1, 1)).sum().neg().backward();
        return model.named_parameters().Where(p => p.parameter.requires_grad)
            .ToDictionary(p => p.name, p => p.parameter.grad!.to_type(ScalarType.Float64).contiguous().data<double>().ToArray());
    }

    static void AssertClose(Dictionary<string, double[]> expected, Dictionary<string, double[]> actual)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, values) in expected)
        {
            double scale = values.Max(Math.Abs);
            Assert.True(scale > 0, $"{name}: no gradient reached it");
            for (int i = 0; i < values.Length; i++)
                Assert.True(Math.Abs(values[i] - actual[name][i]) <= 1e-5 * scale + 1e-7, $"{name}[{i}]: {values[i]} vs {actual[name][i]}");
        }
    }

    [Fact]
    public void Full_fine_tuning_gradients_equal_the_plain_runs()
    {
        using var model = TinyModels.Random(TinyModels.ConfigJson(layers: 3));
        AssertClose(Gradients(model, checkpointing: false), Gradients(model, checkpointing: true));
    }

    [Fact]
    public void Lora_gradients_with_dropout_equal_the_plain_runs_and_reach_adapters_behind_frozen_embeddings()
    {
        using var model = TinyModels.Random(TinyModels.ConfigJson(layers: 2));
        LoraAdapters.Attach(model, new LoraOptions { Rank = 4, Dropout = 0.3 });
        using (no_grad())
            foreach (var b in model.named_parameters().Where(p => p.name.EndsWith("lora_B", StringComparison.Ordinal)))
                b.parameter.normal_(0, 0.1); // B starts at zero: give A a gradient to compare
        AssertClose(Gradients(model, checkpointing: false), Gradients(model, checkpointing: true));
    }

    /// <summary>Native heap held by the graph after a forward pass of 8 × 128 tokens through 4 layers.</summary>
    static long HeldAfterForward(LlamaForCausalLM model, bool checkpointing)
    {
        model.train();
        model.GradientCheckpointing = checkpointing;
        using var scope = NewDisposeScope();
        var ids = arange(0, 8 * 128, dtype: ScalarType.Int64).remainder(60).add(3).reshape(8, 128);
        long before = NativeHeap.InUse();
        Tensor hidden = model.Forward(ids);
        long held = NativeHeap.InUse() - before;
        hidden.sum().backward();
        foreach (var p in model.parameters())
            p.grad = null;
        return held;
    }

    [Fact]
    public void A_checkpointed_forward_holds_a_fraction_of_the_plain_activations()
    {
        using var model = TinyModels.Random(TinyModels.ConfigJson(layers: 4));
        HeldAfterForward(model, false); // warm up the allocator and the JIT
        long plain = HeldAfterForward(model, false), checkpointed = HeldAfterForward(model, true);
        // Plain: each layer keeps its attention probabilities (8·4·128·128 floats, 2 MiB) and a dozen [8, 128, 32..48]
        // activations; checkpointed: each layer's input (128 KiB) and the rotary tables.
        Assert.True(plain > 6L << 20, $"plain forward held {plain >> 10} KiB");
        Assert.True(checkpointed < plain / 4, $"checkpointed forward held {checkpointed >> 10} KiB, plain {plain >> 10} KiB");
    }

    sealed class CheckpointingSeen(LlamaForCausalLM model) : ITrainingCallback
    {
        public bool During;
        public void OnLog(TrainingProgress progress) => During = model.GradientCheckpointing;
    }

    [Fact]
    public void Dpo_training_with_checkpointing_tracks_the_plain_run()
    {
        double[] Losses(bool checkpointing)
        {
            using var policy = PreferenceTrainerTests.Policy();
            using ReferenceModel reference = policy.CreateReference();
            var options = PreferenceTrainerTests.Options(steps: 4) with { GradientCheckpointing = checkpointing };
            var seen = new CheckpointingSeen(policy.Model);
            TrainingResult result = new PreferenceTrainer(policy, PreferenceLosses.Dpo(), options, reference, callbacks: [seen]).Train(PreferenceTrainerTests.Pairs(8));
            Assert.Equal(checkpointing, seen.During);
            Assert.False(policy.Model.GradientCheckpointing); // the model's own setting is back after the run
            return result.History.Select(h => h["loss"]).ToArray();
        }
        double[] plain = Losses(false), checkpointed = Losses(true);
        for (int i = 0; i < plain.Length; i++)
            Assert.Equal(plain[i], checkpointed[i], 5);
    }
}
