using Alignment.Models;
using static TorchSharp.torch;

namespace Alignment.Training;

/// <summary>
/// Puts the model-side settings of <see cref="TrainingOptions"/> — the compute dtype of <c>bf16</c>/<c>fp16</c> and
/// <c>gradient_checkpointing</c> — on the models of a run (policy, reference, reward backbone) and gives each model
/// its own settings back when the run ends. A setting the options leave off keeps what the model had.
/// </summary>
internal sealed class RunSettings : IDisposable
{
    readonly List<(LlamaForCausalLM Model, ScalarType? Compute, bool Checkpointing)> _saved = [];

    RunSettings(TrainingOptions options, IEnumerable<LlamaForCausalLM?> models)
    {
        foreach (LlamaForCausalLM model in models.OfType<LlamaForCausalLM>().Distinct())
        {
            _saved.Add((model, model.ComputeDType, model.GradientCheckpointing));
            model.ComputeDType = options.ComputeDType ?? model.ComputeDType;
            model.GradientCheckpointing |= options.GradientCheckpointing;
        }
    }

    /// <summary>Applies the options to <paramref name="models"/> (nulls and repeats are skipped) until disposed.</summary>
    public static RunSettings Apply(TrainingOptions options, params ICausalLM?[] models) => new(options, models.Select(DecoderOf));

    /// <summary>The decoder behind a model the trainers take (a reference shares or owns one).</summary>
    static LlamaForCausalLM? DecoderOf(ICausalLM? model) => model switch
    {
        LlamaForCausalLM decoder => decoder,
        ReferenceModel reference => reference.Model,
        _ => null,
    };

    public void Dispose()
    {
        foreach (var (model, compute, checkpointing) in _saved)
        {
            model.ComputeDType = compute;
            model.GradientCheckpointing = checkpointing;
        }
    }
}
