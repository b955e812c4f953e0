using System.Diagnostics;
using System.Text.Json.Nodes;
using Alignment.Data;
using Alignment.Distributed;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Alignment.Training;

/// <summary>
/// The one training engine. It owns the optimizer (AdamW over the task's trainable parameters), the learning-rate
/// schedule, seeding, the data stream, evaluation and early stopping, checkpoints and exact resume, logging, callbacks
/// and cancellation; a trainer supplies a <see cref="TrainingTask{T}"/>: what one step does with its examples.
/// </summary>
/// <remarks>
/// Every random draw of step <c>s</c> derives from <c>(seed, s)</c> and the data order of each epoch from
/// <c>(seed, epoch)</c>, so a checkpoint needs only the trainable weights, the optimizer state, the step and the task's
/// own state for a resumed run to repeat the uninterrupted one exactly.
/// </remarks>
internal sealed partial class TrainingLoop<T>
{
    readonly IReadOnlyList<T> _train;
    readonly TrainingTask<T> _task;
    readonly TrainingOptions _options;
    readonly ILogger _logger;
    readonly List<ITrainingCallback> _callbacks;
    readonly Dictionary<int, List<int>> _orders = [];
    readonly IProcessGroup _group;
    LossScaler? _scaler;

    public TrainingLoop(IReadOnlyList<T> train, TrainingTask<T> task, TrainingOptions options, ILogger? logger, IEnumerable<ITrainingCallback>? callbacks)
    {
        ArgumentNullException.ThrowIfNull(train);
        options.Validate();
        if (train.Count == 0)
            throw new ArgumentException("The training data is empty.", nameof(train));
        if (task.Trainable.Count == 0)
            throw new ArgumentException("No parameter is trainable.", nameof(task));
        _train = train;
        _task = task;
        _options = options;
        _logger = logger ?? NullLogger.Instance;
        _group = ProcessGroup.For(options.Distributed, options.MpiLibrary);
        _callbacks = [];
        if (_group.Rank != 0)
            return; // rank 0 alone writes metrics, TensorBoard, progress and checkpoints
        if (options.OutputDir is { } output)
            _callbacks.Add(new MetricsFileCallback(output));
        if (options.TensorBoardDir is { } board)
            _callbacks.Add(new TensorBoardCallback(board));
        _callbacks.AddRange(callbacks ?? []);
    }

    /// <summary>Examples per step over every process: each process's share times the number of processes.</summary>
    int ExamplesPerStep => (_task.ExamplesPerStep ?? _options.BatchSize * _options.GradientAccumulationSteps) * _group.WorldSize;

    public int TotalSteps => _options.MaxSteps ?? (int)Math.Ceiling((double)_train.Count * _options.Epochs / ExamplesPerStep);

    /// <summary>
    /// Trains. With more than one process, an exception on any of them ends the whole job (MPI_Abort) after it is
    /// logged, instead of leaving the others waiting in a collective; the last complete checkpoint stays as it was.
    /// </summary>
    public TrainingResult Run(bool resume, CancellationToken cancellationToken)
    {
        if (_group.WorldSize == 1)
            return RunOnEveryRank(resume, cancellationToken);
        try
        {
            return RunOnEveryRank(resume, cancellationToken);
        }
        catch (Exception e)
        {
            LogRankFailed(_logger, _group.Rank, _group.WorldSize, e);
            Console.Error.WriteLine($"process {_group.Rank} of {_group.WorldSize} failed, ending the job: {e.GetType().Name}: {e.Message}");
            _group.Abort(1);
            throw;
        }
    }

    TrainingResult RunOnEveryRank(bool resume, CancellationToken cancellationToken)
    {
        int total = TotalSteps;
        using FileStream? folderLock = _options.OutputDir is { } output && _group.Rank == 0 ? OutputFolderLock.Acquire(output) : null;
        if (_options.NumThreads is { } threads)
            Native.TorchRuntime.SetThreads(threads);
        using var optimizer = new AdamW(_task.Trainable, _options.LearningRate, _options.WeightDecay);
        _scaler = _options.Fp16 ? new LossScaler() : null;
        LogStart(_logger, total, _task.Trainable.Sum(t => t.Parameter.numel()), _task.Trainable[0].Parameter.device.ToString(),
            Native.TorchRuntime.Threads, optimizer.StateBytes >> 20);
        if (_group.WorldSize > 1)
        {
            LogDataParallel(_logger, _group.WorldSize, _group.Description, ExamplesPerStep);
            foreach (var (_, parameter) in _task.Trainable)
                _group.Broadcast(parameter, root: 0); // every rank starts from rank 0's weights
        }
        var state = new LoopState();
        string? lastCheckpoint = null;
        if (resume && _options.OutputDir is not null && Resume(optimizer) is var (checkpoint, restored))
        {
            state = restored;
            if (_group.Rank == 0)
                CheckpointFiles.TruncateMetrics(_options.OutputDir, state.Step);
            lastCheckpoint = checkpoint;
            LogResumed(_logger, checkpoint, state.Step);
        }
        foreach (ITrainingCallback callback in _callbacks)
            callback.OnTrainBegin(state.Step, total);

        var clock = Stopwatch.StartNew();
        bool stoppedEarly = false;
        for (int step = state.Step; step < total; step++)
        {
            if (Agreed(cancellationToken.IsCancellationRequested))
            {
                stoppedEarly = true;
                break;
            }
            torch.manual_seed(_options.Seed * 1_000_003L + step); // every random draw is a function of (seed, step): resumes replay exactly
            double learningRate = _options.LearningRateAt(step, total);
            optimizer.LearningRate = learningRate;
            var stepClock = Stopwatch.StartNew();
            var context = new StepContext(step, optimizer, _task.Trainable, _options, _logger, _scaler, _group, _task.SummedMetrics);
            IReadOnlyDictionary<string, double>? own = _task.Step(ExamplesOf(step), context);
            if (context.Updates == 0)
                continue; // every update of the step was skipped (non-finite, logged)

            Dictionary<string, double> metrics = context.Metrics(stepClock.Elapsed);
            metrics["learning_rate"] = learningRate;
            metrics["epoch"] = (double)(step + 1) * ExamplesPerStep / _train.Count;
            foreach (var (name, value) in own ?? new Dictionary<string, double>())
                metrics[name] = value;
            state.Step = step + 1;
            Record(state, metrics, total, clock.Elapsed, evaluation: false);
            LogStep(_logger, state.Step, total, metrics["loss"], learningRate);

            bool last = state.Step == total;
            if ((_task.Evaluate is not null || _callbacks.Any(c => c is IEvaluationCallback)) && (last || _options.EvalSteps is { } every && state.Step % every == 0))
            {
                Dictionary<string, double> evaluation = Evaluate(state.Step);
                Record(state, evaluation, total, clock.Elapsed, evaluation: true);
                if (Agreed(_callbacks.OfType<IEvaluationCallback>().Any(c => c.StopRequested))) // every process evaluates here: all take part
                {
                    LogCallbackStop(_logger, state.Step);
                    stoppedEarly = !last;
                    lastCheckpoint = Save(state, optimizer) ?? lastCheckpoint;
                    break;
                }
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
        if (stoppedEarly && Agreed(cancellationToken.IsCancellationRequested))
            lastCheckpoint = Save(state, optimizer) ?? lastCheckpoint;
        var result = new TrainingResult(state.Step, total, stoppedEarly, lastCheckpoint, state.History);
        foreach (ITrainingCallback callback in _callbacks)
            callback.OnTrainEnd(result);
        return result;
    }

    /// <summary>True on every process when <paramref name="local"/> is true on any: a stop is taken by all or none.</summary>
    bool Agreed(bool local) => _group.WorldSize == 1 ? local : _group.AllReduceSum(local ? 1 : 0)[0] > 0;

    /// <summary>
    /// The examples of step <paramref name="step"/> over every process (the task takes its own share): a stream over
    /// epochs, each epoch in its own seeded order — the same whatever the number of processes.
    /// </summary>
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

    List<int> Order(int epoch)
    {
        if (!_orders.TryGetValue(epoch, out List<int>? order))
        {
            _orders.Clear(); // epochs only grow along the stream: keep the current order only
            _orders[epoch] = order = DataSplit.Shuffle(Enumerable.Range(0, _train.Count), unchecked(_options.Seed * 7919 + epoch));
        }
        return order;
    }

    Dictionary<string, double> Evaluate(int step)
    {
        using var noGrad = no_grad();
        var metrics = new Dictionary<string, double>();
        foreach (var (name, value) in _task.Evaluate?.Invoke() ?? new Dictionary<string, double>())
            metrics["eval_" + name] = value;
        foreach (IEvaluationCallback callback in _callbacks.OfType<IEvaluationCallback>())
            foreach (var (name, value) in callback.Evaluate(step))
                metrics["eval_" + name] = value;
        return metrics;
    }

    static bool ShouldStop(LoopState state, IReadOnlyDictionary<string, double> evaluation, EarlyStopping early)
    {
        if (!evaluation.TryGetValue(early.Metric, out double value))
            throw new InvalidOperationException($"Early stopping watches '{early.Metric}', which the evaluation does not report ({string.Join(", ", evaluation.Keys)}).");
        bool improved = state.Best is not { } best || (early.GreaterIsBetter ? value > best : value < best);
        if (improved)
        {
            state.Best = value;
            state.BestStep = state.Step;
            state.EvalsWithoutImprovement = 0;
            return false;
        }
        return ++state.EvalsWithoutImprovement >= early.Patience;
    }

    void Record(LoopState state, Dictionary<string, double> metrics, int total, TimeSpan elapsed, bool evaluation)
    {
        metrics["step"] = state.Step;
        state.History.Add(metrics);
        var progress = new TrainingProgress(state.Step, total, metrics, elapsed, evaluation);
        foreach (ITrainingCallback callback in _callbacks)
            callback.OnLog(progress);
    }

    sealed class LoopState
    {
        public int Step;
        public double? Best;
        public int? BestStep;
        public int EvalsWithoutImprovement;
        public List<IReadOnlyDictionary<string, double>> History { get; } = [];
    }

    [LoggerMessage(EventId = 6000, Level = LogLevel.Information,
        Message = "training {TotalSteps} steps of {Trainable} trainable parameters on {Device} with {Threads} threads; optimizer state {StateMiB} MiB")]
    static partial void LogStart(ILogger logger, int totalSteps, long trainable, string device, int threads, long stateMiB);

    [LoggerMessage(EventId = 6008, Level = LogLevel.Information,
        Message = "data-parallel over {WorldSize} processes ({Group}); {GlobalExamples} examples per step over all of them")]
    static partial void LogDataParallel(ILogger logger, int worldSize, string group, int globalExamples);

    [LoggerMessage(EventId = 6009, Level = LogLevel.Error, Message = "process {Rank} of {WorldSize} failed; ending the job")]
    static partial void LogRankFailed(ILogger logger, int rank, int worldSize, Exception exception);

    [LoggerMessage(EventId = 6001, Level = LogLevel.Information, Message = "step {Step}/{TotalSteps} loss {Loss} learning_rate {LearningRate}")]
    static partial void LogStep(ILogger logger, int step, int totalSteps, double loss, double learningRate);

    [LoggerMessage(EventId = 6003, Level = LogLevel.Information, Message = "checkpoint written to {Folder}")]
    static partial void LogCheckpoint(ILogger logger, string folder);

    [LoggerMessage(EventId = 6004, Level = LogLevel.Information, Message = "resumed from {Checkpoint} at step {Step}")]
    static partial void LogResumed(ILogger logger, string checkpoint, int step);

    [LoggerMessage(EventId = 6006, Level = LogLevel.Warning, Message = "checkpoint {Checkpoint} is damaged ({Problem}); trying the one before it")]
    static partial void LogDamaged(ILogger logger, string checkpoint, string problem);

    [LoggerMessage(EventId = 6010, Level = LogLevel.Warning, Message = "stopped at step {Step}: an evaluation callback asked to stop")]
    static partial void LogCallbackStop(ILogger logger, int step);

    [LoggerMessage(EventId = 6005, Level = LogLevel.Information, Message = "early stop at step {Step}: {Metric} stopped improving")]
    static partial void LogEarlyStop(ILogger logger, int step, string metric);
}
