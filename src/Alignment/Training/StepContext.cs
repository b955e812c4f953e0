using Alignment.Distributed;
using Microsoft.Extensions.Logging;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Alignment.Training;

/// <summary>
/// The optimizer side of one training step, handed by <see cref="TrainingLoop{T}"/> to the trainer's step function:
/// <see cref="Apply"/> runs forward and backward passes and takes one optimizer update. An off-policy trainer applies one
/// update per step; <c>PpoLoop</c> applies several per rollout. Losses, metrics, tokens and gradient norms are summed
/// here for the step's report.
/// </summary>
internal sealed partial class StepContext
{
    readonly AdamW _optimizer;
    readonly LossScaler? _scaler;
    readonly IReadOnlyList<Parameter> _parameters;
    readonly IReadOnlyList<(string Name, Parameter Parameter)> _named;
    readonly TrainingOptions _options;
    readonly ILogger _logger;
    readonly Dictionary<string, double> _metricSums = [];
    readonly IReadOnlySet<string> _summed;
    double _lossSum, _gradNormSum, _items;
    int _updates;
    long _tokens;

    internal StepContext(int step, AdamW optimizer, IReadOnlyList<(string Name, Parameter Parameter)> trainable, TrainingOptions options, ILogger logger,
        LossScaler? scaler = null, IProcessGroup? group = null, IReadOnlySet<string>? summedMetrics = null)
    {
        Group = group ?? ProcessGroup.Single;
        _summed = summedMetrics ?? new HashSet<string>();
        Step = step;
        _optimizer = optimizer;
        _scaler = scaler;
        _named = trainable;
        _parameters = trainable.Select(t => t.Parameter).ToList();
        _options = options;
        _logger = logger;
    }

    /// <summary>The step's index (0-based): every random draw of the step derives from it and the seed.</summary>
    public int Step { get; }

    /// <summary>The processes of the run; this step's examples are this rank's share of the global batch.</summary>
    public IProcessGroup Group { get; }

    /// <summary>Updates applied so far in this step.</summary>
    public int Updates => _updates;

    /// <summary>
    /// One optimizer update over this rank's micro-batches. Each micro-batch's loss is a mean over its
    /// <see cref="StepOutput.Items"/>; the update's gradient is the mean over every item of every micro-batch of every
    /// rank (a micro-batch of one item each, by default, weighs micro-batches equally), each micro-batch back-propagated
    /// in its own dispose scope. Then the ranks' gradients are combined, clipped, and the optimizer steps. A NaN/∞ loss
    /// (on any rank) or gradient norm leaves the weights untouched: it throws <see cref="NonFiniteLossException"/>, or
    /// with <see cref="TrainingOptions.SkipNonFiniteSteps"/> logs a warning and returns false. After the update the heap's
    /// freed pages go back to the system (<see cref="Native.NativeHeap.ReleaseFreed"/>).
    /// </summary>
    public bool Apply(IReadOnlyList<MicroBatch> microBatches)
    {
        var sums = new Dictionary<string, double>();
        double lossSum = 0, items = 0, normaliser = 0;
        long tokens = 0;
        string? problem = null;
        foreach (MicroBatch micro in microBatches)
        {
            using var scope = NewDisposeScope();
            StepOutput output = micro.Compute();
            double loss = output.Loss.to_type(ScalarType.Float64).item<double>();
            if (!double.IsFinite(loss))
            {
                problem = NonFiniteWeight() is { } weight
                    ? $"step {Step + 1}: the loss is {loss} because the trainable weight '{weight}' holds NaN or infinite values"
                    : $"step {Step + 1}: the loss is {loss} on the batch {micro.Describe()}";
                break;
            }
            if (output.Items > 0)
            {
                // Scaled by a first guess of the global item count (this micro-batch's, as if every one had as many);
                // GradientAverage corrects it to the true count, a no-op when the guess is right (examples: always).
                if (normaliser == 0)
                    normaliser = output.Items * microBatches.Count * Group.WorldSize;
                output.Loss.mul(output.Items * (_scaler?.Scale ?? 1) / normaliser).backward();
            }
            lossSum += loss * output.Items;
            items += output.Items;
            tokens += output.Tokens;
            foreach (var (name, value) in output.Metrics)
                sums[name] = sums.GetValueOrDefault(name) + value.to_type(ScalarType.Float64).item<double>() * (_summed.Contains(name) ? 1 : output.Items);
        }
        double[] agreed = Group.AllReduceSum(problem is null ? 0 : 1, items);
        if (problem is null && agreed[0] > 0)
            problem = $"step {Step + 1}: another process's batch gave a non-finite loss";
        double gradNorm = double.NaN;
        if (problem is null)
        {
            GradientAverage.Reduce(Group, _parameters, agreed[1] > 0 ? Math.Max(normaliser, 1) / agreed[1] : 0, (long)_options.DdpBucketCapMb << 20);
            _scaler?.Unscale(_parameters);
            using var clipScope = NewDisposeScope(); // clip_grad_norm_ makes one norm tensor per parameter
            gradNorm = nn.utils.clip_grad_norm_(_parameters, _options.MaxGradNorm > 0 ? _options.MaxGradNorm : double.MaxValue);
            if (_scaler is not null)
            {
                _scaler.Update(overflowed: !double.IsFinite(gradNorm));
                if (!double.IsFinite(gradNorm))
                {
                    LogOverflow(_logger, Step + 1, _scaler.Scale); // float16's range, not the data: skip this update, as GradScaler does
                    _optimizer.ZeroGrad();
                    return false;
                }
            }
            if (!double.IsFinite(gradNorm))
                problem = $"step {Step + 1}: the gradient norm is {gradNorm} on the batch {string.Join(", ", microBatches.Select(m => m.Describe()))}";
        }
        if (problem is null)
            _optimizer.Step();
        _optimizer.ZeroGrad();
        Native.NativeHeap.ReleaseFreed(); // what the step freed leaves the process: memory between steps is what is live
        if (problem is not null)
        {
            if (!_options.SkipNonFiniteSteps)
                throw new NonFiniteLossException(problem + "; the weights were not updated. Lower the learning rate, or set SkipNonFiniteSteps to skip such steps.");
            LogSkipped(_logger, problem);
            return false;
        }
        _lossSum += lossSum;
        _items += items;
        _gradNormSum += gradNorm;
        _tokens += tokens;
        _updates++;
        foreach (var (name, sum) in sums)
            _metricSums[name] = _metricSums.GetValueOrDefault(name) + sum;
        return true;
    }

    /// <summary>
    /// The step's standard metrics over every rank: <c>loss</c> and the trainer's metrics averaged over items (summed
    /// for the task's summed metrics), <c>grad_norm</c> averaged over updates, and <c>tokens_per_second</c>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The ranks report different metric names (a trainer's bug).</exception>
    internal Dictionary<string, double> Metrics(TimeSpan elapsed)
    {
        string[] names = [.. _metricSums.Keys.Order(StringComparer.Ordinal)];
        if (Group.WorldSize > 1)
        {
            double[] shape = Group.AllReduceSum(names.Length, StableHash(names));
            if (shape[0] != (double)names.Length * Group.WorldSize || shape[1] != StableHash(names) * Group.WorldSize)
                throw new InvalidOperationException($"The processes report different metrics; this one reports {string.Join(", ", names)}.");
        }
        double[] totals = Group.AllReduceSum([_lossSum, _items, _tokens, .. names.Select(n => _metricSums[n])]);
        var metrics = new Dictionary<string, double>
        {
            ["loss"] = totals[0] / Math.Max(totals[1], double.Epsilon),
            ["grad_norm"] = _gradNormSum / Math.Max(1, _updates),
            ["tokens_per_second"] = totals[2] / Math.Max(elapsed.TotalSeconds, 1e-9),
        };
        for (int i = 0; i < names.Length; i++)
            metrics[names[i]] = _summed.Contains(names[i]) ? totals[3 + i] : totals[3 + i] / Math.Max(totals[1], double.Epsilon);
        return metrics;
    }

    /// <summary>An FNV-1a hash of the names, the same in every process (string.GetHashCode is not), exact in a double.</summary>
    static double StableHash(IEnumerable<string> names)
    {
        uint hash = 2166136261;
        foreach (char c in string.Join('\n', names))
            hash = (hash ^ c) * 16777619;
        return hash >> 8;
    }

    /// <summary>The name of the first trainable weight that holds NaN or ∞ (a bad update or checkpoint, not the data), or null.</summary>
    string? NonFiniteWeight()
    {
        using var scope = NewDisposeScope();
        foreach (var (name, parameter) in _named)
            if (!parameter.isfinite().all().item<bool>())
                return name;
        return null;
    }

    [LoggerMessage(EventId = 6007, Level = LogLevel.Information, Message = "step {Step}: float16 gradients overflowed; update skipped, loss scale now {Scale}")]
    static partial void LogOverflow(ILogger logger, int step, double scale);

    [LoggerMessage(EventId = 6002, Level = LogLevel.Warning, Message = "skipped a step: {Problem}")]
    static partial void LogSkipped(ILogger logger, string problem);
}
