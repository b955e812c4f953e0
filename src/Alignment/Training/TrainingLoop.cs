using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Alignment.Data;
using Alignment.Models;
using Microsoft.Extensions.Logging;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Alignment.Training;

/// <summary>What a trainer's loss function returns for one forward pass.</summary>
/// <param name="Loss">Scalar loss attached to the graph.</param>
/// <param name="Metrics">Detached scalar metrics.</param>
/// <param name="Tokens">Tokens processed (for <c>tokens_per_second</c>).</param>
internal sealed record StepOutput(Tensor Loss, IReadOnlyDictionary<string, Tensor> Metrics, long Tokens);

/// <summary>Evaluation shared by the trainers.</summary>
internal static class StepAverages
{
    /// <summary>The step function's loss and metrics averaged over batches of <paramref name="items"/>, without gradient.</summary>
    public static IReadOnlyDictionary<string, double> Over<T>(IReadOnlyList<T> items, int batchSize, Func<IReadOnlyList<T>, StepOutput> step)
    {
        using var noGrad = no_grad();
        var sums = new Dictionary<string, double>();
        int batches = 0;
        for (int start = 0; start < items.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            StepOutput output = step(items.Skip(start).Take(batchSize).ToList());
            sums["loss"] = sums.GetValueOrDefault("loss") + output.Loss.to_type(ScalarType.Float64).item<double>();
            foreach (var (name, value) in output.Metrics)
                sums[name] = sums.GetValueOrDefault(name) + value.to_type(ScalarType.Float64).item<double>();
            batches++;
        }
        return sums.ToDictionary(kv => kv.Key, kv => kv.Value / Math.Max(1, batches));
    }
}

/// <summary>How training ended.</summary>
/// <param name="Steps">Optimizer steps done in total (including those before a resume).</param>
/// <param name="TotalSteps">Planned steps.</param>
/// <param name="StoppedEarly">Early stopping or cancellation ended it before the plan.</param>
/// <param name="LastCheckpoint">The newest checkpoint folder written, if any.</param>
/// <param name="History">Every logged step's metrics (training and evaluation), in order.</param>
public sealed record TrainingResult(int Steps, int TotalSteps, bool StoppedEarly, string? LastCheckpoint, IReadOnlyList<IReadOnlyDictionary<string, double>> History);

/// <summary>A loss or gradient became NaN or infinite; the weights were not updated from it.</summary>
public sealed class NonFiniteLossException(string message) : InvalidOperationException(message);

/// <summary>The optimisation loop every trainer shares.</summary>
internal sealed partial class TrainingLoop<T>
{
    readonly IReadOnlyList<T> _train;
    readonly IReadOnlyList<(string Name, Parameter Parameter)> _trainable;
    readonly Func<IReadOnlyList<T>, StepOutput> _compute;
    readonly Func<T, SourceLocation?> _sourceOf;
    readonly Func<IReadOnlyDictionary<string, double>>? _evaluate;
    readonly TrainingOptions _options;
    readonly ILogger _logger;

    public TrainingLoop(IReadOnlyList<T> train, IReadOnlyList<(string Name, Parameter Parameter)> trainable, Func<IReadOnlyList<T>, StepOutput> compute,
        Func<T, SourceLocation?> sourceOf, TrainingOptions options, Func<IReadOnlyDictionary<string, double>>? evaluate)
    {
        options.Validate();
        if (train.Count == 0)
            throw new ArgumentException("The training data is empty.", nameof(train));
        if (trainable.Count == 0)
            throw new ArgumentException("No parameter is trainable.", nameof(trainable));
        _train = train;
        _trainable = trainable;
        _compute = compute;
        _sourceOf = sourceOf;
        _options = options;
        _evaluate = evaluate;
        _logger = options.Logger;
    }

    int ExamplesPerStep => _options.BatchSize * _options.GradientAccumulationSteps;

    public int TotalSteps => _options.MaxSteps ?? (int)Math.Ceiling((double)_train.Count * _options.Epochs / ExamplesPerStep);

    public TrainingResult Run(bool resume, CancellationToken cancellationToken)
    {
        int total = TotalSteps;
        var parameters = _trainable.Select(t => t.Parameter).ToList();
        using var optimizer = optim.AdamW(parameters, lr: _options.LearningRate, weight_decay: _options.WeightDecay);
        var history = new List<IReadOnlyDictionary<string, double>>();
        var state = new LoopState();
        string? lastCheckpoint = null;
        if (resume && _options.OutputDir is not null && CheckpointFiles.Latest(_options.OutputDir) is { } checkpoint)
        {
            state = Restore(checkpoint, optimizer);
            history.AddRange(state.History);
            CheckpointFiles.TruncateMetrics(_options.OutputDir, state.Step);
            lastCheckpoint = checkpoint;
            LogResumed(_logger, checkpoint, state.Step);
        }
        if (_options.OutputDir is not null)
            Directory.CreateDirectory(_options.OutputDir);

        _tensorBoard = _options.TensorBoardDir is { } board ? torch.utils.tensorboard.SummaryWriter(board) : null; // flushes on each write
        var clock = Stopwatch.StartNew();
        bool stoppedEarly = false;
        for (int step = state.Step; step < total; step++)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                stoppedEarly = true;
                break;
            }
            torch.manual_seed(_options.Seed * 1_000_003L + step); // every random draw is a function of (seed, step): resumes replay exactly
            var stepClock = Stopwatch.StartNew();
            var sums = new Dictionary<string, double>();
            double lossSum = 0;
            long tokens = 0;
            List<T> examples = ExamplesOf(step);
            string? problem = null;
            for (int micro = 0; micro < _options.GradientAccumulationSteps; micro++)
            {
                List<T> batch = examples.Skip(micro * _options.BatchSize).Take(_options.BatchSize).ToList();
                using var scope = NewDisposeScope();
                StepOutput output = _compute(batch);
                double loss = output.Loss.to_type(ScalarType.Float64).item<double>();
                if (!double.IsFinite(loss))
                {
                    problem = $"step {step + 1}: the loss is {loss} on the batch {Describe(batch)}";
                    break;
                }
                output.Loss.div(_options.GradientAccumulationSteps).backward();
                lossSum += loss;
                tokens += output.Tokens;
                foreach (var (name, value) in output.Metrics)
                    sums[name] = sums.GetValueOrDefault(name) + value.to_type(ScalarType.Float64).item<double>();
            }
            double gradNorm = double.NaN;
            if (problem is null)
            {
                using var clipScope = NewDisposeScope(); // clip_grad_norm_ makes one norm tensor per parameter
                gradNorm = nn.utils.clip_grad_norm_(parameters, _options.MaxGradNorm > 0 ? _options.MaxGradNorm : double.MaxValue);
            }
            if (problem is null && !double.IsFinite(gradNorm))
                problem = $"step {step + 1}: the gradient norm is {gradNorm} on the batch {Describe(examples)}";
            if (problem is not null)
            {
                optimizer.zero_grad();
                if (!_options.SkipNonFiniteSteps)
                    throw new NonFiniteLossException(problem + "; the weights were not updated. Lower the learning rate, or set SkipNonFiniteSteps to skip such steps.");
                LogSkipped(_logger, problem);
                continue;
            }

            double learningRate = _options.LearningRateAt(step, total);
            foreach (var group in optimizer.ParamGroups)
                group.LearningRate = learningRate;
            using (NewDisposeScope()) // every read of a parameter's .grad makes a managed wrapper; free them each step
            {
                optimizer.step();
                optimizer.zero_grad();
            }

            var metrics = new Dictionary<string, double>
            {
                ["loss"] = lossSum / _options.GradientAccumulationSteps,
                ["learning_rate"] = learningRate,
                ["grad_norm"] = gradNorm,
                ["epoch"] = (double)(step + 1) * ExamplesPerStep / _train.Count,
                ["tokens_per_second"] = tokens / Math.Max(stepClock.Elapsed.TotalSeconds, 1e-9),
            };
            foreach (var (name, sum) in sums)
                metrics[name] = sum / _options.GradientAccumulationSteps;
            state.Step = step + 1;
            Record(state, history, metrics);
            LogStep(_logger, state.Step, total, metrics["loss"], learningRate);
            _options.Progress?.Report(new TrainingProgress(state.Step, total, metrics, clock.Elapsed));

            bool last = state.Step == total;
            if (_evaluate is not null && (last || _options.EvalSteps is { } every && state.Step % every == 0))
            {
                var evaluation = Evaluate();
                Record(state, history, evaluation);
                if (_options.EarlyStopping is { } early && ShouldStop(state, evaluation, early))
                {
                    LogEarlyStop(_logger, state.Step, early.Metric);
                    stoppedEarly = !last;
                    lastCheckpoint = Save(state, optimizer) ?? lastCheckpoint;
                    break;
                }
            }
            bool epochEnd = (long)state.Step * ExamplesPerStep / _train.Count > (long)(state.Step - 1) * ExamplesPerStep / _train.Count;
            if (last || epochEnd || _options.SaveSteps is { } save && state.Step % save == 0)
                lastCheckpoint = Save(state, optimizer) ?? lastCheckpoint;
        }
        if (stoppedEarly && cancellationToken.IsCancellationRequested)
            lastCheckpoint = Save(state, optimizer) ?? lastCheckpoint;
        return new TrainingResult(state.Step, total, stoppedEarly, lastCheckpoint, history);
    }

    /// <summary>The examples of optimizer step <paramref name="step"/>: a stream over epochs, each epoch in its own seeded order.</summary>
    List<T> ExamplesOf(int step)
    {
        var examples = new List<T>(ExamplesPerStep);
        for (long g = (long)step * ExamplesPerStep; g < (long)(step + 1) * ExamplesPerStep; g++)
        {
            int epoch = (int)(g / _train.Count);
            examples.Add(_train[Order(epoch)[(int)(g % _train.Count)]]);
        }
        return examples;
    }

    readonly Dictionary<int, List<int>> _orders = new();

    List<int> Order(int epoch)
    {
        if (!_orders.TryGetValue(epoch, out List<int>? order))
        {
            _orders.Clear();
            _orders[epoch] = order = DataSplit.Shuffle(Enumerable.Range(0, _train.Count), unchecked(_options.Seed * 7919 + epoch));
        }
        return order;
    }

    string Describe(IEnumerable<T> batch)
    {
        var sources = batch.Select(_sourceOf).OfType<SourceLocation>().Take(4).Select(s => s.ToString()).ToList();
        return sources.Count == 0 ? "(no source locations)" : string.Join(", ", sources) + (batch.Count() > sources.Count ? ", …" : "");
    }

    Dictionary<string, double> Evaluate()
    {
        using var noGrad = no_grad();
        return _evaluate!().ToDictionary(kv => "eval_" + kv.Key, kv => kv.Value);
    }

    static bool ShouldStop(LoopState state, IReadOnlyDictionary<string, double> evaluation, EarlyStopping early)
    {
        if (!evaluation.TryGetValue(early.Metric, out double value))
            throw new InvalidOperationException($"Early stopping watches '{early.Metric}', which the evaluation does not report ({string.Join(", ", evaluation.Keys)}).");
        bool improved = state.Best is not { } best || (early.GreaterIsBetter ? value > best : value < best);
        if (improved)
        {
            state.Best = value;
            state.EvalsWithoutImprovement = 0;
            return false;
        }
        return ++state.EvalsWithoutImprovement >= early.Patience;
    }

    TorchSharp.Modules.SummaryWriter? _tensorBoard;

    void Record(LoopState state, List<IReadOnlyDictionary<string, double>> history, Dictionary<string, double> metrics)
    {
        metrics["step"] = state.Step;
        history.Add(metrics);
        state.History.Add(metrics);
        foreach (var (key, value) in metrics)
            if (key != "step" && double.IsFinite(value))
                _tensorBoard?.add_scalar(key.StartsWith("eval_", StringComparison.Ordinal) ? "eval/" + key[5..] : "train/" + key, (float)value, state.Step);
        if (_options.OutputDir is not null)
            CheckpointFiles.AppendMetrics(_options.OutputDir, metrics);
    }

    /// <summary>Writes checkpoint-STEP (see <see cref="CheckpointFiles"/>), or nothing without an output folder.</summary>
    string? Save(LoopState state, OptimizerHelper optimizer)
    {
        if (_options.OutputDir is null)
            return null;
        var json = new JsonObject
        {
            ["seed"] = _options.Seed,
            ["total_steps"] = TotalSteps,
            ["best_metric"] = state.Best,
            ["evals_without_improvement"] = state.EvalsWithoutImprovement,
            ["config"] = new JsonObject
            {
                ["learning_rate"] = _options.LearningRate, ["lr_scheduler_type"] = _options.Schedule.ToString().ToLowerInvariant(),
                ["warmup_ratio"] = _options.WarmupRatio, ["weight_decay"] = _options.WeightDecay, ["per_device_train_batch_size"] = _options.BatchSize,
                ["gradient_accumulation_steps"] = _options.GradientAccumulationSteps, ["num_train_epochs"] = _options.Epochs,
                ["max_steps"] = _options.MaxSteps, ["max_grad_norm"] = _options.MaxGradNorm, ["seed"] = _options.Seed,
                ["train_examples"] = _train.Count,
            },
            ["log_history"] = new JsonArray(state.History.Select(h => (JsonNode)new JsonObject(h.Select(kv =>
                new KeyValuePair<string, JsonNode?>(kv.Key, double.IsFinite(kv.Value) ? kv.Value : null)))).ToArray()),
        };
        string folder = CheckpointFiles.Save(_options.OutputDir, state.Step, _trainable, optimizer, json);
        LogCheckpoint(_logger, folder);
        return folder;
    }

    LoopState Restore(string checkpoint, OptimizerHelper optimizer)
    {
        JsonObject json = CheckpointFiles.Restore(checkpoint, _trainable, optimizer);
        var state = new LoopState
        {
            Step = json["global_step"]!.GetValue<int>(),
            Best = json["best_metric"]?.GetValue<double>(),
            EvalsWithoutImprovement = json["evals_without_improvement"]?.GetValue<int>() ?? 0,
        };
        foreach (JsonNode? entry in json["log_history"]?.AsArray() ?? [])
            state.History.Add(entry!.AsObject().ToDictionary(kv => kv.Key, kv => kv.Value?.GetValue<double>() ?? double.NaN));
        return state;
    }

    sealed class LoopState
    {
        public int Step;
        public double? Best;
        public int EvalsWithoutImprovement;
        public List<IReadOnlyDictionary<string, double>> History { get; } = [];
    }

    [LoggerMessage(EventId = 6001, Level = LogLevel.Information, Message = "step {Step}/{TotalSteps} loss {Loss} learning_rate {LearningRate}")]
    static partial void LogStep(ILogger logger, int step, int totalSteps, double loss, double learningRate);

    [LoggerMessage(EventId = 6002, Level = LogLevel.Warning, Message = "skipped a step: {Problem}")]
    static partial void LogSkipped(ILogger logger, string problem);

    [LoggerMessage(EventId = 6003, Level = LogLevel.Information, Message = "checkpoint written to {Folder}")]
    static partial void LogCheckpoint(ILogger logger, string folder);

    [LoggerMessage(EventId = 6004, Level = LogLevel.Information, Message = "resumed from {Checkpoint} at step {Step}")]
    static partial void LogResumed(ILogger logger, string checkpoint, int step);

    [LoggerMessage(EventId = 6005, Level = LogLevel.Information, Message = "early stop at step {Step}: {Metric} stopped improving")]
    static partial void LogEarlyStop(ILogger logger, int step, string metric);
}
