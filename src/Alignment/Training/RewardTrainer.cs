using Alignment.Data;
using Alignment.Models;
using Microsoft.Extensions.Logging;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Alignment.Training;

/// <summary>
/// Bradley–Terry reward modelling, as TRL's <c>RewardTrainer</c>: <c>−log σ(r_chosen − r_rejected − margin)</c> (the
/// pair's <see cref="TokenizedPair.Margin"/>, 0 when absent), plus
/// <c>center_rewards_coefficient · mean((r_chosen + r_rejected)²)</c> when set, which keeps rewards centred on 0.
/// Reports <c>accuracy</c> (share of pairs with r_chosen &gt; r_rejected) and <c>margin</c>.
/// </summary>
/// <param name="model">The reward model to train.</param>
/// <param name="options">Optimisation settings.</param>
/// <param name="centerRewardsCoefficient"><c>center_rewards_coefficient</c>; 0 = off.</param>
/// <param name="logger">Where steps and checkpoints are logged; nowhere when null.</param>
/// <param name="callbacks">Receivers of every step's metrics, beyond metrics.jsonl and TensorBoard.</param>
public sealed class RewardTrainer(RewardModel model, TrainingOptions options, double centerRewardsCoefficient = 0, ILogger? logger = null,
    IEnumerable<ITrainingCallback>? callbacks = null)
{
    /// <summary>TRL's <c>RewardConfig</c> defaults: the options a reward run starts from (<c>learning_rate</c> 1e-5).</summary>
    public static TrainingOptions DefaultOptions { get; } = new() { LearningRate = 1e-5 };

    /// <summary>Trains on pairs; see <see cref="PreferenceTrainer.Train(IReadOnlyList{TokenizedPair}, IReadOnlyList{TokenizedPair}?, bool, CancellationToken)"/> for the arguments.</summary>
    public TrainingResult Train(IReadOnlyList<TokenizedPair> train, IReadOnlyList<TokenizedPair>? eval = null, bool resume = false,
        CancellationToken cancellationToken = default)
    {
        TokenRange.Check(train.Concat(eval ?? []), model.Backbone.Config);
        model.Backbone.train();
        var trainable = TrainingTask.TrainableOf(model.Backbone);
        trainable.Add(("score.weight", model.Head.Weight));
        var task = TrainingTask.Batches(trainable, options, shard => Step(shard.Local), (TokenizedPair p) => p.Source) with
        {
            Evaluate = eval is null ? null : () => Evaluate(eval),
            Config = new Dictionary<string, string> { ["center_rewards_coefficient"] = FormattableString.Invariant($"{centerRewardsCoefficient}"), ["train_data"] = DataFingerprint.Of(train) },
        };
        using var settings = RunSettings.Apply(options, model.Backbone);
        return new TrainingLoop<TokenizedPair>(train, task, options, logger, callbacks).Run(resume, cancellationToken);
    }

    /// <summary>Loss, accuracy and margin over the pairs, without gradient.</summary>
    public IReadOnlyDictionary<string, double> Evaluate(IReadOnlyList<TokenizedPair> pairs) => StepAverages.Over(pairs, options.BatchSize, Step);

    StepOutput Step(IReadOnlyList<TokenizedPair> pairs)
    {
        using PreferenceBatch batch = PreferenceCollator.Collate(pairs, options.PaddingValue, model.Backbone.Device);
        int b = pairs.Count;
        Tensor rewards = model.Score(batch.InputIds, batch.AttentionMask).to_type(ScalarType.Float32); // [2B]
        Tensor chosen = rewards.narrow(0, 0, b), rejected = rewards.narrow(0, b, b);
        Tensor margins = tensor(pairs.Select(p => (float)(p.Margin ?? 0)).ToArray(), device: rewards.device);
        Tensor loss = F.logsigmoid(chosen.sub(rejected).sub(margins)).neg().mean();
        if (centerRewardsCoefficient > 0)
            loss = loss.add(chosen.add(rejected).square().mean().mul(centerRewardsCoefficient));
        var metrics = new Dictionary<string, Tensor>
        {
            ["accuracy"] = chosen.gt(rejected).to_type(ScalarType.Float32).mean().detach(),
            ["margin"] = chosen.sub(rejected).mean().detach(),
        };
        return new StepOutput(loss, metrics, batch.AttentionMask.sum().item<long>()) { Items = b };
    }
}
