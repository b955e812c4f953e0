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
    double _lossSum, _gradNormSum;
    int _microBatches, _updates;
    long _tokens;

    internal StepContext(int step, AdamW optimizer, IReadOnlyList<(string Name, Parameter Parameter)> trainable, TrainingOptions options, ILogger logger,
        LossScaler? scaler = null)
    {
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

    /// <summary>Updates applied so far in this step.</summary>
    public int Updates => _updates;

    /// <summary>
    /// One optimizer update: each micro-batch's loss, divided by <see cref="TrainingOptions.GradientAccumulationSteps"/>,
    /// is back-propagated in its own dispose scope; then the gradient is clipped and the optimizer steps. A NaN/∞ loss
    /// or gradient norm leaves the weights untouched: it throws <see cref="NonFiniteLossException"/>, or with
    /// <see cref="TrainingOptions.SkipNonFiniteSteps"/> logs a warning and returns false.
    /// </summary>
    public bool Apply(IReadOnlyList<MicroBatch> microBatches)
    {
        var sums = new Dictionary<string, double>();
        double lossSum = 0;
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
            output.Loss.div(_options.GradientAccumulationSteps / (_scaler?.Scale ?? 1)).backward();
            lossSum += loss;
            tokens += output.Tokens;
            foreach (var (name, value) in output.Metrics)
                sums[name] = sums.GetValueOrDefault(name) + value.to_type(ScalarType.Float64).item<double>();
        }
        double gradNorm = double.NaN;
        if (problem is null)
        {
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
        if (problem is not null)
        {
            if (!_options.SkipNonFiniteSteps)
                throw new NonFiniteLossException(problem + "; the weights were not updated. Lower the learning rate, or set SkipNonFiniteSteps to skip such steps.");
            LogSkipped(_logger, problem);
            return false;
        }
        _lossSum += lossSum;
        _gradNormSum += gradNorm;
        _tokens += tokens;
        _microBatches += microBatches.Count;
        _updates++;
        foreach (var (name, sum) in sums)
            _metricSums[name] = _metricSums.GetValueOrDefault(name) + sum;
        return true;
    }

    /// <summary>
    /// The step's standard metrics: <c>loss</c> and the trainer's metrics averaged over micro-batches, <c>grad_norm</c>
    /// averaged over updates, and <c>tokens_per_second</c>.
    /// </summary>
    internal Dictionary<string, double> Metrics(TimeSpan elapsed)
    {
        var metrics = new Dictionary<string, double>
        {
            ["loss"] = _lossSum / Math.Max(1, _microBatches),
            ["grad_norm"] = _gradNormSum / Math.Max(1, _updates),
            ["tokens_per_second"] = _tokens / Math.Max(elapsed.TotalSeconds, 1e-9),
        };
        foreach (var (name, sum) in _metricSums)
            metrics[name] = sum / Math.Max(1, _microBatches);
        return metrics;
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
