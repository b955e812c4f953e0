using System.Text.Json.Nodes;
using Alignment.Data;
using Alignment.Distributed;
using TorchSharp.Modules;

namespace Alignment.Training;

/// <summary>
/// What a trainer gives <see cref="TrainingLoop{T}"/>: the parameters to optimise and what one training step does with
/// its examples. Everything else — optimiser, schedule, accumulation, clipping, seeding, checkpoints, resume,
/// evaluation, logging, callbacks, cancellation — is the engine's.
/// </summary>
/// <typeparam name="T">The training example: a pair, a completion, or a prompt.</typeparam>
/// <param name="Trainable">The named parameters the optimizer updates and checkpoints save.</param>
/// <param name="Step">
/// One step over its examples — the step's examples over every process, of which it trains on its own rank's share
/// (<see cref="StepContext.Group"/>) — calling <see cref="StepContext.Apply"/> once per optimizer update; returns metrics
/// of its own (or null), the same on every process.
/// </param>
internal sealed record TrainingTask<T>(
    IReadOnlyList<(string Name, Parameter Parameter)> Trainable,
    Func<IReadOnlyList<T>, StepContext, IReadOnlyDictionary<string, double>?> Step)
{
    /// <summary>Examples drawn from the shuffled data stream per step; null = batch size × accumulation steps.</summary>
    public int? ExamplesPerStep { get; init; }

    /// <summary>Metrics that add up over micro-batches and processes (counts) instead of averaging.</summary>
    public IReadOnlySet<string>? SummedMetrics { get; init; }

    /// <summary>The loss's metrics over the evaluation data (without gradient), or null when there is none.</summary>
    public Func<IReadOnlyDictionary<string, double>>? Evaluate { get; init; }

    /// <summary>The trainer's own settings recorded with each checkpoint (the loss, …); a resume with other values refuses.</summary>
    public IReadOnlyDictionary<string, string>? Config { get; init; }

    /// <summary>Adds the trainer's own state (beyond weights and optimizer) to a checkpoint's state JSON.</summary>
    public Action<JsonObject>? SaveState { get; init; }

    /// <summary>Restores what <see cref="SaveState"/> wrote.</summary>
    public Action<JsonObject>? RestoreState { get; init; }

    /// <summary>Tensors beyond the trainable weights that change during training (TR-DPO's synced reference): each checkpoint saves them, a resume copies them back in place.</summary>
    public IReadOnlyList<(string Name, TorchSharp.torch.Tensor Tensor)>? ExtraTensors { get; init; }
}

/// <summary>
/// One process's share of a global micro-batch: <see cref="Local"/> is <paramref name="Global"/>[Offset, Offset + Count).
/// Losses that pair examples across the batch (KTO's mismatched pairs) read the neighbours from <see cref="Global"/>.
/// </summary>
internal sealed record Shard<T>(IReadOnlyList<T> Global, int Offset, int Count, IProcessGroup Group)
{
    /// <summary>A shard that is the whole batch (one process, or evaluation).</summary>
    public Shard(IReadOnlyList<T> all) : this(all, 0, all.Count, ProcessGroup.Single)
    {
    }

    /// <summary>This process's examples.</summary>
    public IReadOnlyList<T> Local { get; } = Global.Skip(Offset).Take(Count).ToList();
}

/// <summary>Builds the tasks of the off-policy trainers.</summary>
internal static class TrainingTask
{
    /// <summary>
    /// The off-policy step: the step's examples in global micro-batches of <see cref="TrainingOptions.BatchSize"/> ×
    /// processes, of which each process takes its own consecutive <see cref="TrainingOptions.BatchSize"/> (rank 0 the
    /// first); one forward and backward pass per micro-batch, then one optimizer update.
    /// </summary>
    public static TrainingTask<T> Batches<T>(IReadOnlyList<(string Name, Parameter Parameter)> trainable, TrainingOptions options,
        Func<Shard<T>, StepOutput> compute, Func<T, SourceLocation?> sourceOf) =>
        new(trainable, (examples, context) =>
        {
            int world = context.Group.WorldSize, rank = context.Group.Rank;
            context.Apply(examples.Chunk(options.BatchSize * world)
                .Select(global => new Shard<T>(global, rank * options.BatchSize, options.BatchSize, context.Group))
                .Select(shard => new MicroBatch(() => compute(shard), () => Describe(shard.Local, sourceOf))).ToList());
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
