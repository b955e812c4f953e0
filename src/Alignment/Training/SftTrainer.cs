using Alignment.Data;
using Alignment.Kernels;
using Alignment.Models;
using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace Alignment.Training;

/// <summary>
/// Supervised fine-tuning: the mean negative log-likelihood of the completion tokens (prompt tokens are not trained
/// on), from padded batches or, with <c>packing</c>, from padding-free packed rows. An update's mean is over every
/// completion token of its global batch — all accumulation steps and processes — as transformers does it with
/// <c>num_items_in_batch</c>; <c>num_tokens</c> is that count.
/// </summary>
/// <param name="policy">The model to train (LoRA adapters or all weights).</param>
/// <param name="options">Optimisation settings.</param>
/// <param name="packing">Pack several examples into one row without padding (TRL's <c>packing</c>, padding-free).</param>
/// <param name="logger">Where steps and checkpoints are logged; nowhere when null.</param>
/// <param name="callbacks">Receivers of every step's metrics, beyond metrics.jsonl and TensorBoard.</param>
public sealed class SftTrainer(PolicyModel policy, TrainingOptions options, bool packing = false, ILogger? logger = null,
    IEnumerable<ITrainingCallback>? callbacks = null)
{
    /// <summary>TRL's <c>SFTConfig</c> defaults: the options an SFT run starts from (<c>learning_rate</c> 2e-5).</summary>
    public static TrainingOptions DefaultOptions { get; } = new() { LearningRate = 2e-5 };

    /// <summary>Trains; see <see cref="PreferenceTrainer.Train(IReadOnlyList{TokenizedPair}, IReadOnlyList{TokenizedPair}?, bool, CancellationToken)"/> for the arguments.</summary>
    public TrainingResult Train(IReadOnlyList<TokenizedCompletion> train, IReadOnlyList<TokenizedCompletion>? eval = null, bool resume = false,
        CancellationToken cancellationToken = default)
    {
        TokenRange.Check(train.Concat(eval ?? []), policy.Model.Config);
        policy.Model.train();
        var task = TrainingTask.Batches(TrainingTask.TrainableOf(policy.Model), options, shard => Step(shard.Local), (TokenizedCompletion e) => e.Source) with
        {
            SummedMetrics = new HashSet<string> { "num_tokens" },
            Evaluate = eval is null ? null : () => Evaluate(eval),
            Config = new Dictionary<string, string> { ["packing"] = $"{packing}", ["train_data"] = DataFingerprint.Of(train) },
        };
        using var settings = RunSettings.Apply(options, policy.Model);
        return new TrainingLoop<TokenizedCompletion>(train, task, options, logger, callbacks).Run(resume, cancellationToken);
    }

    /// <summary>Mean completion NLL (<c>loss</c>) over the examples, without gradient.</summary>
    public IReadOnlyDictionary<string, double> Evaluate(IReadOnlyList<TokenizedCompletion> examples) =>
        EvaluationMode.Run(policy.Model, () => new Dictionary<string, double> { ["loss"] = StepAverages.Over(examples, options.BatchSize, Step)["loss"] });

    StepOutput Step(IReadOnlyList<TokenizedCompletion> examples)
    {
        if (!packing)
        {
            var (nll, count, tokens) = BatchForward.CompletionNll(policy.Model, examples, options.PaddingValue);
            return new StepOutput(nll, new Dictionary<string, Tensor> { ["num_tokens"] = count.detach() }, tokens) { Items = count.to_type(ScalarType.Float64).item<double>() };
        }
        using PackedBatch packed = CompletionCollator.Pack(examples, policy.Model.Device);
        Tensor hidden = policy.Model.Forward(packed.InputIds, packed.SegmentIds, packed.PositionIds);
        var (loss, scored) = BatchForward.MeanNll(policy.Model, hidden, packed.Targets);
        return new StepOutput(loss, new Dictionary<string, Tensor> { ["num_tokens"] = scored.detach() }, packed.InputIds.shape[1]) { Items = scored.to_type(ScalarType.Float64).item<double>() };
    }
}
