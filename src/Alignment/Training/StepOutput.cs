using static TorchSharp.torch;

namespace Alignment.Training;

/// <summary>What a trainer's loss function returns for one forward pass.</summary>
/// <param name="Loss">Scalar loss attached to the graph.</param>
/// <param name="Metrics">Detached scalar metrics.</param>
/// <param name="Tokens">Tokens processed (for <c>tokens_per_second</c>).</param>
internal sealed record StepOutput(Tensor Loss, IReadOnlyDictionary<string, Tensor> Metrics, long Tokens)
{
    /// <summary>
    /// What <see cref="Loss"/> and the metrics are means over (examples, or tokens for a token-level loss): an update's
    /// gradient is the mean over every item of its micro-batches on every process, so the result does not depend on
    /// how the global batch is split. The default, 1, weighs micro-batches equally.
    /// </summary>
    public double Items { get; init; } = 1;
}

/// <summary>One forward pass of a training step and, for error messages, where its data came from.</summary>
internal sealed record MicroBatch(Func<StepOutput> Compute, Func<string> Describe);

/// <summary>Evaluation shared by the trainers.</summary>
internal static class StepAverages
{
    /// <summary>
    /// The step function's loss and metrics over <paramref name="items"/>, without gradient, in batches of
    /// <paramref name="batchSize"/>: each batch's means weighted by its number of examples, so that a short last batch
    /// counts for what it holds (as transformers' evaluation does).
    /// </summary>
    public static IReadOnlyDictionary<string, double> Over<T>(IReadOnlyList<T> items, int batchSize, Func<IReadOnlyList<T>, StepOutput> step)
    {
        using var noGrad = no_grad();
        var sums = new Dictionary<string, double>();
        foreach (T[] batch in items.Chunk(batchSize))
        {
            using var scope = NewDisposeScope();
            StepOutput output = step(batch);
            sums["loss"] = sums.GetValueOrDefault("loss") + output.Loss.to_type(ScalarType.Float64).item<double>() * batch.Length;
            foreach (var (name, value) in output.Metrics)
                sums[name] = sums.GetValueOrDefault(name) + value.to_type(ScalarType.Float64).item<double>() * batch.Length;
        }
        return sums.ToDictionary(kv => kv.Key, kv => kv.Value / Math.Max(1, items.Count));
    }
}
