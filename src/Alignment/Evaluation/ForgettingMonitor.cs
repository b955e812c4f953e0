using Alignment.Data;
using Alignment.Kernels;
using Alignment.Models;
using Alignment.Training;
using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace Alignment.Evaluation;

/// <summary>
/// Watches for catastrophic forgetting during training: at every evaluation point it measures the policy's token-level
/// negative log-likelihood and next-token accuracy on a held-out SFT or general-text set (the completion tokens of each
/// example; a plain text is a completion with an empty prompt) and logs <c>eval_forgetting_nll</c>,
/// <c>eval_forgetting_nll_change</c> (from the first measurement, taken when training begins) and
/// <c>eval_forgetting_accuracy</c>. Past <see cref="AlarmThreshold"/> it warns, and stops the run when
/// <see cref="StopOnAlarm"/>.
/// </summary>
/// <param name="model">The model being trained (the policy's model).</param>
/// <param name="heldOut">The held-out examples.</param>
/// <param name="padTokenId">The padding id for batching.</param>
/// <param name="logger">Where alarms are logged.</param>
public sealed partial class ForgettingMonitor(LlamaForCausalLM model, IReadOnlyList<TokenizedCompletion> heldOut, long padTokenId, ILogger? logger = null) : IEvaluationCallback
{
    readonly LlamaForCausalLM _model = model ?? throw new ArgumentNullException(nameof(model));
    readonly IReadOnlyList<TokenizedCompletion> _heldOut = heldOut is { Count: > 0 } ? heldOut : throw new ArgumentException("The held-out set is empty.", nameof(heldOut));

    /// <summary>An increase of the NLL (nats per token) over its first value that raises the alarm; null = never.</summary>
    public double? AlarmThreshold { get; init; }

    /// <summary>Stop the run when the alarm is raised.</summary>
    public bool StopOnAlarm { get; init; }

    /// <summary>Examples per forward pass.</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>The first NLL measured (when training began), or null before.</summary>
    public double? Baseline { get; private set; }

    /// <inheritdoc />
    public bool StopRequested { get; private set; }

    /// <inheritdoc />
    public void OnTrainBegin(int startStep, int totalSteps)
    {
        using var noGrad = no_grad();
        Baseline ??= Measure().Nll;
    }

    /// <inheritdoc />
    public void OnLog(TrainingProgress progress)
    {
    }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, double> Evaluate(int step)
    {
        var (nll, accuracy) = Measure();
        double change = nll - (Baseline ?? nll);
        if (AlarmThreshold is { } threshold && change > threshold)
        {
            if (logger is not null)
                LogAlarm(logger, step, nll, change, threshold);
            StopRequested = StopOnAlarm;
        }
        return new Dictionary<string, double> { ["forgetting_nll"] = nll, ["forgetting_nll_change"] = change, ["forgetting_accuracy"] = accuracy };
    }

    /// <summary>The mean NLL over every completion token of the set and the share of them that are the argmax.</summary>
    (double Nll, double Accuracy) Measure()
    {
        bool training = _model.training;
        _model.eval();
        double nll = 0, correct = 0, tokens = 0;
        foreach (TokenizedCompletion[] chunk in _heldOut.Chunk(BatchSize))
        {
            using var scope = NewDisposeScope();
            CompletionBatch batch = CompletionCollator.Collate(chunk, padTokenId, device: _model.Device);
            Tensor hidden = _model.Forward(batch.InputIds, batch.AttentionMask);               // [B, T, H]
            Tensor logProbs = ModelLogProbs.Of(_model, hidden, batch.Targets);                     // [B, T], 0 where ignored
            Tensor counted = batch.Targets.ne(TokenLogProbs.IgnoreIndex);
            Tensor predicted = hidden.matmul(_model.LmHeadWeight.t()).argmax(-1);               // [B, T]
            nll -= logProbs.sum().to_type(ScalarType.Float64).item<double>();
            correct += predicted.eq(batch.Targets).logical_and(counted).sum().item<long>();
            tokens += counted.sum().item<long>();
            batch.Dispose();
        }
        _model.train(training);
        return tokens == 0 ? (0, 0) : (nll / tokens, correct / tokens);
    }

    [LoggerMessage(EventId = 6011, Level = LogLevel.Warning, Message = "step {Step}: forgetting alarm — held-out NLL {Nll} is {Change} nats per token above its start (threshold {Threshold})")]
    static partial void LogAlarm(ILogger logger, int step, double nll, double change, double threshold);
}
