using System.Text.Json.Nodes;
using Alignment.Data;
using TorchSharp.Modules;

namespace Alignment.Training;

/// <summary>
/// What a trainer gives <see cref="TrainingLoop{T}"/>: the parameters to optimise and what one training step does with
/// its examples. Everything else — optimiser, schedule, accumulation, clipping, seeding, checkpoints, resume,
/// evaluation, logging, callbacks, cancellation — is the engine's.
/// </summary>
/// <typeparam name="T">The training example: a pair, a completion, or a prompt.</typeparam>
/// <param name="Trainable">The named parameters the optimizer updates and checkpoints save.</param>
/// <param name="Step">One step over its examples: calls <see cref="StepContext.Apply"/> once per optimizer update and returns metrics of its own (or null).</param>
internal sealed record TrainingTask<T>(
    IReadOnlyList<(string Name, Parameter Parameter)> Trainable,
    Func<IReadOnlyList<T>, StepContext, IReadOnlyDictionary<string, double>?> Step)
{
    /// <summary>Examples drawn from the shuffled data stream per step; null = batch size × accumulation steps.</summary>
    public int? ExamplesPerStep { get; init; }

    /// <summary>The loss's metrics over the evaluation data (without gradient), or null when there is none.</summary>
    public Func<IReadOnlyDictionary<string, double>>? Evaluate { get; init; }

    /// <summary>The trainer's own settings recorded with each checkpoint (the loss, …); a resume with other values refuses.</summary>
    public IReadOnlyDictionary<string, string>? Config { get; init; }

        /// <summary>Adds the trainer's own state (beyond weights and optimizer) to a checkpoint's state JSON.</summary>
    public Action<JsonObject>? SaveState { get; init; }

    /// <summary>Restores what <see cref="SaveState"/> wrote.</summary>
    public Action<JsonObject>? RestoreState { get; init; }
}

/// <summary>Builds the tasks of the off-policy trainers.</summary>
internal static class TrainingTask
{
    /// <summary>
    /// The off-policy step: the step's examples in batches of <see cref="TrainingOptions.BatchSize"/>, one forward and
    /// backward pass each, then one optimizer update.
    /// </summary>
    public static TrainingTask<T> Batches<T>(IReadOnlyList<(string Name, Parameter Parameter)> trainable, TrainingOptions options,
        Func<IReadOnlyList<T>, StepOutput> compute, Func<T, SourceLocation?> sourceOf) =>
        new(trainable, (examples, context) =>
        {
            context.Apply(examples.Chunk(options.BatchSize)
                .Select(batch => new MicroBatch(() => compute(batch), () => Describe(batch, sourceOf))).ToList());
            return null;
        });

    /// <summary>The first source locations of a batch, for error messages.</summary>
    public static string Describe<T>(IReadOnlyList<T> batch, Func<T, SourceLocation?> sourceOf)
    {
        var sources = batch.Select(sourceOf).OfType<SourceLocation>().Take(4).Select(s => s.ToString()).ToList();
        return sources.Count == 0 ? "(no source locations)" : string.Join(", ", sources) + (batch.Count > sources.Count ? ", …" : "");
    }

    /// <summary>The named parameters of <paramref name="module"/> that require gradients.</summary>
    public static List<(string Name, Parameter Parameter)> TrainableOf(TorchSharp.torch.nn.Module module, string prefix = "") =>
        module.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (prefix + p.name, p.parameter)).ToList();
}
