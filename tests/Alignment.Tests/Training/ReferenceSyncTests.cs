using Alignment.Losses;
using Alignment.Models;
using Alignment.Training;
using static TorchSharp.torch;

namespace Alignment.Tests.Training;

/// <summary>TR-DPO: the reference moves to α·policy + (1 − α)·reference after every N-th optimizer step.</summary>
public sealed class ReferenceSyncTests : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("alignment-trdpo-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    static Dictionary<string, Tensor> Weights(LlamaForCausalLM model) =>
        model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());

    [Fact]
    public void After_the_sync_step_the_reference_is_the_mixture_of_policy_and_former_reference()
    {
        using var scope = NewDisposeScope();
        using var policy = PreferenceTrainerTests.Policy();
        using ReferenceModel reference = policy.CreateReference();
        var initial = Weights(policy.Model);
        var trainer = new PreferenceTrainer(policy, PreferenceLosses.Dpo(), PreferenceTrainerTests.Options(steps: 2), reference)
        {
            SyncReference = new ReferenceSync(MixupAlpha: 0.25, SyncSteps: 2),
        };

        trainer.Train(PreferenceTrainerTests.Pairs(8));

        // One sync, after step 2, from the reference as it started (the policy's initial weights) to the final policy.
        var final = Weights(policy.Model);
        foreach (var (name, parameter) in reference.Model.named_parameters())
        {
            Tensor expected = final[name].mul(0.25).add(initial[name].mul(0.75));
            Assert.True(parameter.allclose(expected, rtol: 1e-6, atol: 1e-7), name);
        }
        Assert.False(final.First().Value.allclose(initial.First().Value));   // the policy did move
    }

    [Fact]
    public void With_alpha_1_every_step_the_reference_is_the_policy_so_each_later_loss_is_log_2()
    {
        using var policy = PreferenceTrainerTests.Policy();
        using ReferenceModel reference = policy.CreateReference();
        var trainer = new PreferenceTrainer(policy, PreferenceLosses.Dpo(), PreferenceTrainerTests.Options(steps: 4), reference)
        {
            SyncReference = new ReferenceSync(MixupAlpha: 1, SyncSteps: 1),
        };
        TrainingResult result = trainer.Train(PreferenceTrainerTests.Pairs(8));
        Assert.All(result.History, step => Assert.Equal(Math.Log(2), step["loss"], 5));   // the step's forward sees policy == reference
        Assert.All(result.History, step => Assert.Equal(0, step["rewards/margins"], 5));
    }

    double[] Train(string output, bool resume, CancellationToken cancel = default, IEnumerable<ITrainingCallback>? callbacks = null)
    {
        using var policy = PreferenceTrainerTests.Policy();
        using ReferenceModel reference = policy.CreateReference();
        var options = PreferenceTrainerTests.Options(output, steps: 6) with { SaveSteps = 1 };
        return new PreferenceTrainer(policy, PreferenceLosses.Dpo(), options, reference, callbacks: callbacks) { SyncReference = new ReferenceSync(0.5, 2) }
            .Train(PreferenceTrainerTests.Pairs(8), resume: resume, cancellationToken: cancel).History.Select(h => h["loss"]).ToArray();
    }

    [Fact]
    public void A_resumed_run_equals_the_straight_one_because_checkpoints_keep_the_synced_reference()
    {
        double[] straight = Train(Path.Combine(_folder, "straight"), resume: false);
        string output = Path.Combine(_folder, "interrupted");
        using (var cancel = new CancellationTokenSource())
            Train(output, resume: false, cancel.Token, [new CheckpointResumeTests.CancelAt(3, cancel)]);   // after step 3: one sync (step 2) behind it
        Assert.True(File.Exists(Path.Combine(output, "checkpoint-3", "extra_state.safetensors")));

        Assert.Equal(straight, Train(output, resume: true));
    }

    [Fact]
    public void A_reference_that_is_the_policys_own_base_or_precomputed_log_probs_cannot_be_synced()
    {
        using var policy = PreferenceTrainerTests.Policy();
        LoraAdapters.Attach(policy.Model, new LoraOptions { Rank = 2 });
        using ReferenceModel shared = policy.CreateReference();
        var lora = Assert.Throws<ArgumentException>(() => new PreferenceTrainer(policy, PreferenceLosses.Dpo(), PreferenceTrainerTests.Options(steps: 1), shared)
        {
            SyncReference = new ReferenceSync(),
        }.Train(PreferenceTrainerTests.Pairs(4)));
        Assert.Contains("LoRA", lora.Message);

        using var full = PreferenceTrainerTests.Policy();
        using ReferenceModel reference = full.CreateReference();
        var precomputed = ReferenceLogProbs.Compute(reference, PreferenceTrainerTests.Pairs(4), new TrainingOptions { BatchSize = 4 });
        var stale = Assert.Throws<ArgumentException>(() => new PreferenceTrainer(full, PreferenceLosses.Dpo(), PreferenceTrainerTests.Options(steps: 1), precomputed: precomputed)
        {
            SyncReference = new ReferenceSync(),
        }.Train(PreferenceTrainerTests.Pairs(4)));
        Assert.Contains("precomputed", stale.Message);

        var values = Assert.Throws<ArgumentException>(new ReferenceSync(MixupAlpha: 0, SyncSteps: 0).Validate);
        Assert.Contains("ref_model_mixup_alpha", values.Message);
        Assert.Contains("ref_model_sync_steps", values.Message);
    }
}
