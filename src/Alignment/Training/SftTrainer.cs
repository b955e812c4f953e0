using Alignment.Data;
using Alignment.Kernels;
using Alignment.Models;
using static TorchSharp.torch;

namespace Alignment.Training;

/// <summary>
/// Supervised fine-tuning: the mean negative log-likelihood of the completion tokens (prompt tokens are not trained
/// on), from padded batches or, with <paramref name="packing"/>, from padding-free packed rows.
/// </summary>
public sealed class SftTrainer(PolicyModel policy, TrainingOptions options, long padTokenId = 0, bool packing = false)
{
    /// <summary>Trains; see <see cref="PreferenceTrainer.Train(IReadOnlyList{TokenizedPair}, IReadOnlyList{TokenizedPair}?, bool, CancellationToken)"/> for the arguments.</summary>
    public TrainingResult Train(IReadOnlyList<TokenizedCompletion> train, IReadOnlyList<TokenizedCompletion>? eval = null, bool resume = false,
        CancellationToken cancellationToken = default)
    {
        policy.Model.train();
        var trainable = policy.Model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter)).ToList();
        var loop = new TrainingLoop<TokenizedCompletion>(train, trainable, Step, e => e.Source, options, eval is null ? null : () => Evaluate(eval));
        return loop.Run(resume, cancellationToken);
    }

    /// <summary>Mean completion NLL (<c>loss</c>) over the examples, without gradient.</summary>
    public IReadOnlyDictionary<string, double> Evaluate(IReadOnlyList<TokenizedCompletion> examples)
    {
        bool training = policy.Model.training;
        policy.Model.eval();
        try
        {
            return new Dictionary<string, double> { ["loss"] = StepAverages.Over(examples, options.BatchSize, Step)["loss"] };
        }
        finally
        {
            policy.Model.train(training);
        }
    }

    StepOutput Step(IReadOnlyList<TokenizedCompletion> examples)
    {
        Tensor perToken, mask;
        long tokens;
        if (packing)
        {
            using PackedBatch packed = CompletionCollator.Pack(examples, policy.Model.Device);
            Tensor hidden = policy.Model.Forward(packed.InputIds, packed.SegmentIds, packed.PositionIds);
            perToken = TokenLogProbs.FromHidden(hidden, policy.Model.LmHeadWeight, packed.Targets);
            mask = packed.Targets.ne(TokenLogProbs.IgnoreIndex);
            tokens = packed.InputIds.shape[1];
        }
        else
        {
            using CompletionBatch batch = CompletionCollator.Collate(examples, padTokenId, device: policy.Model.Device);
            (perToken, mask, _) = BatchForward.LogProbs(policy.Model, batch.InputIds, batch.AttentionMask, batch.Targets);
            tokens = batch.AttentionMask.sum().item<long>();
        }
        Tensor count = mask.sum().to_type(perToken.dtype).clamp_min(1);
        Tensor loss = perToken.where(mask, 0.0).sum().neg().div(count);
        var metrics = new Dictionary<string, Tensor> { ["num_tokens"] = count.detach() };
        return new StepOutput(loss, metrics, tokens);
    }
}
