using Alignment.Data;
using Alignment.Kernels;
using Alignment.Models;
using Alignment.Scoring;
using Alignment.Tokenization;
using static TorchSharp.torch;

namespace Alignment.Rl;

/// <summary>
/// One rollout: sampled completions, their scores, and (without gradient) the policy's and the reference's per-token
/// log-probabilities and the value head's values. Its tensors belong to the dispose scope it was collected in; the
/// batch is disposed with the rollout.
/// </summary>
internal sealed class Rollout : IDisposable
{
    public required IReadOnlyList<Completion> Completions { get; init; }
    /// <summary>[B] the weighted reward less any missing-EOS penalty; NaN where every reward function abstained.</summary>
    public required double[] Scores { get; init; }
    /// <summary>Each reward function's rewards.</summary>
    public required RewardTable Rewards { get; init; }
    public required CompletionBatch Batch { get; init; }
    /// <summary>[B, T] true at completion tokens.</summary>
    public required Tensor Mask { get; init; }
    /// <summary>[B, T]</summary>
    public required Tensor OldLogProbs { get; init; }
    /// <summary>[B, T]</summary>
    public required Tensor ReferenceLogProbs { get; init; }   // the old log-probabilities themselves when there is no reference
    /// <summary>[B, T], zeros without a value head.</summary>
    public required Tensor OldValues { get; init; }

    public void Dispose() => Batch.Dispose();
}

/// <summary>Samples completions with the KV-cached generator, scores them, and computes what the updates need.</summary>
internal sealed class RolloutCollector(PolicyModel policy, ICausalLM? reference, IReadOnlyList<IRewardFunction> rewards, IReadOnlyList<double> weights,
    ModelTokenizer tokenizer, IChatTemplate? template, PpoOptions options, ScalarHead? valueHead)
{
    /// <summary>One rollout over <paramref name="prompts"/> (each as a user turn, or raw text without a template), each sampled with its own seed.</summary>
    public Rollout Collect(IReadOnlyList<PromptExample> prompts, IReadOnlyList<long> rowSeeds)
    {
        var promptIds = prompts.Select(p => (template is null ? tokenizer.EncodeContent(p.Prompt) : tokenizer.Encode(template.Render([new("user", p.Prompt)], true))).ToArray()).ToList();
        bool training = policy.Model.training;
        policy.Model.eval(); // rollouts sample with LoRA dropout off, as TRL does
        IReadOnlyList<Completion> completions = TextGenerator.Generate(policy.Model, promptIds.Select(p => p.Select(i => (long)i).ToArray()).ToList(),
            new GenerationOptions
            {
                MaxNewTokens = options.ResponseLength, Temperature = options.Temperature, TopK = options.TopK, TopP = options.TopP,
                EosTokenIds = tokenizer.EosTokenIds.Select(i => (long)i).ToArray(), RowSeeds = rowSeeds,
            });
        policy.Model.train(training);
        var samples = prompts.Select((p, i) => new RewardSample(p.Prompt, tokenizer.Decode(completions[i].Tokens, skipSpecialTokens: true),
            completions[i].Tokens.Select(t => (int)t).ToArray(), p.Columns)).ToList();
        RewardTable table = RewardTable.Score(rewards, weights, samples);
        double[] scores = [.. table.Total];
        if (options.MissingEosPenalty is { } penalty)
            for (int i = 0; i < scores.Length; i++)
                if (completions[i].Reason != FinishReason.EndOfSequence)
                    scores[i] -= penalty;

        var rows = promptIds.Select((p, i) => new TokenizedCompletion(p, completions[i].Tokens.Select(t => (int)t).ToArray(), true, new SourceLocation("rollout", i + 1))).ToList();
        CompletionBatch batch = CompletionCollator.Collate(rows, options.Training.PaddingValue, device: policy.Model.Device);
        using var noGrad = no_grad();
        Tensor hidden = policy.Model.Forward(batch.InputIds, batch.AttentionMask);
        Tensor oldLogProbs = ModelLogProbs.Of(policy.Model, hidden, batch.Targets);
        return new Rollout
        {
            Completions = completions,
            Scores = scores,
            Rewards = table,
            Batch = batch,
            Mask = batch.Targets.ne(TokenLogProbs.IgnoreIndex),
            OldLogProbs = oldLogProbs,
            // Without a reference (β = 0) the KL is 0: the policy's own log-probabilities stand in, and no forward runs.
            ReferenceLogProbs = reference is null ? oldLogProbs
                : ModelLogProbs.Of(reference, reference.Forward(batch.InputIds, batch.AttentionMask), batch.Targets),
            OldValues = valueHead is null ? zeros_like(oldLogProbs) : valueHead.PerToken(hidden).to_type(oldLogProbs.dtype),
        };
    }
}
