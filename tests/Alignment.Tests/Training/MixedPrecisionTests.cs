using System.Text.Json.Nodes;
using Alignment.Data;
using Alignment.Losses;
using Alignment.Models;
using Alignment.Tests.Models;
using Alignment.Training;
using static TorchSharp.torch;

namespace Alignment.Tests.Training;

public sealed class MixedPrecisionTests : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("alignment-precision-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    sealed class ComputeSeen(LlamaForCausalLM model) : ITrainingCallback
    {
        public ScalarType? Compute;
        public ScalarType Activations;

        public void OnLog(TrainingProgress progress)
        {
            Compute = model.ComputeDType;
            using var scope = NewDisposeScope();
            Activations = model.Forward(tensor(new long[] { 1, 5, 9 }).unsqueeze(0)).dtype;
        }
    }

    (double[] Losses, ScalarType? Compute, ScalarType Activations, ScalarType Weights) Dpo(TrainingOptions options)
    {
        using var policy = PreferenceTrainerTests.Policy();
        using ReferenceModel reference = policy.CreateReference();
        var seen = new ComputeSeen(policy.Model);
        var history = new PreferenceTrainer(policy, PreferenceLosses.Dpo(), options, reference, callbacks: [seen]).Train(PreferenceTrainerTests.Pairs(8)).History;
        Assert.Null(policy.Model.ComputeDType); // the model's own setting is back after the run
        return (history.Select(h => h["loss"]).ToArray(), seen.Compute, seen.Activations, policy.Model.DType);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Half_precision_compute_tracks_the_float32_run_with_float32_master_weights(bool bf16)
    {
        var options = PreferenceTrainerTests.Options(steps: 6);
        var (reference, _, plainActivations, _) = Dpo(options);
        var (losses, compute, activations, weights) = Dpo(options with { Bf16 = bf16, Fp16 = !bf16 });

        ScalarType half = bf16 ? ScalarType.BFloat16 : ScalarType.Float16;
        Assert.Equal(ScalarType.Float32, plainActivations);
        Assert.Equal(half, compute);
        Assert.Equal(half, activations);
        Assert.Equal(ScalarType.Float32, weights);
        // bfloat16 keeps 8 significant bits (relative error 2^-9 per rounding), float16 11; the loss is near ln 2.
        double tolerance = bf16 ? 0.03 : 0.005;
        for (int i = 0; i < reference.Length; i++)
            Assert.True(Math.Abs(reference[i] - losses[i]) < tolerance, $"step {i + 1}: float32 {reference[i]:F5}, {half} {losses[i]:F5}");
        Assert.True(losses[^1] < losses[0], "the half-precision run learns");
    }

    [Fact]
    public void A_bfloat16_model_keeps_updates_smaller_than_its_resolution()
    {
        using var float32 = TinyModels.Random(TinyModels.ConfigJson());
        using var model = new LlamaForCausalLM(float32.Config, ScalarType.BFloat16);
        using (no_grad())
            foreach (var (name, parameter) in model.named_parameters())
                parameter.copy_(float32.state_dict()[name]);
        using var policy = new PolicyModel(model);
        Tensor before = model.LmHeadWeight.to_type(ScalarType.Float32).clone();

        // Adam moves each weight by about the learning rate per update: 1e-5 is below half of bfloat16's spacing
        // (2^-8 relative) for every weight larger than 0.005 in magnitude, so without a float32 master copy none of them
        // would ever change; 40 updates add up to 4e-4, past that spacing for weights up to ~0.1.
        var completions = PreferenceTrainerTests.Pairs(8).Select(p => new TokenizedCompletion(p.Prompt, p.Chosen, true, p.Source)).ToList();
        new SftTrainer(policy, new TrainingOptions { LearningRate = 1e-5, BatchSize = 4, MaxSteps = 40, Schedule = LearningRateSchedule.Constant }).Train(completions);

        using var scope = NewDisposeScope();
        Tensor after = model.LmHeadWeight.to_type(ScalarType.Float32);
        Tensor large = before.abs().gt(0.01).logical_and(before.abs().lt(0.08));
        double moved = after.ne(before).logical_and(large).sum().item<long>() / (double)large.sum().item<long>();
        Assert.Equal(ScalarType.BFloat16, model.DType);
        Assert.True(moved > 0.5, $"{moved:P0} of the weights in (0.01, 0.08) moved");
    }

    [Fact]
    public void The_float16_loss_scale_halves_on_overflow_doubles_after_2000_clean_updates_and_is_checkpointed()
    {
        var scaler = new LossScaler();
        Assert.Equal(65536, scaler.Scale);
        scaler.Update(overflowed: true);
        Assert.Equal(32768, scaler.Scale);
        for (int i = 0; i < 1999; i++)
            scaler.Update(overflowed: false);
        Assert.Equal(32768, scaler.Scale);
        scaler.Update(overflowed: false);
        Assert.Equal(65536, scaler.Scale);

        string output = Path.Combine(_folder, "fp16");
        using var policy = PreferenceTrainerTests.Policy();
        using ReferenceModel reference = policy.CreateReference();
        new PreferenceTrainer(policy, PreferenceLosses.Dpo(), PreferenceTrainerTests.Options(output, steps: 2) with { Fp16 = true }, reference)
            .Train(PreferenceTrainerTests.Pairs(8));
        var state = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "checkpoint-2", "trainer_state.json")))!;
        Assert.True(state["loss_scale"]!.GetValue<double>() is 65536 or 32768 or 16384);
        Assert.Contains("bf16 and fp16", Assert.Throws<ArgumentException>(() => new TrainingOptions { Bf16 = true, Fp16 = true }.Validate()).Message);
    }
}
