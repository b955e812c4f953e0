using System.Text.Json.Nodes;
using Alignment.Data;
using Alignment.Models;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Alignment.Training;

/// <summary>
/// A reward model: a Llama-family decoder and a <see cref="ScalarHead"/> read at the last real token, saved as a
/// transformers <c>LlamaForSequenceClassification</c> folder (<c>model.*</c> and <c>score.weight</c>, one label).
/// </summary>
public sealed class RewardModel : IDisposable
{
    /// <summary>Wraps a decoder and a head (this object then owns both).</summary>
    public RewardModel(LlamaForCausalLM backbone, ScalarHead head)
    {
        Backbone = backbone ?? throw new ArgumentNullException(nameof(backbone));
        Head = head ?? throw new ArgumentNullException(nameof(head));
    }

    /// <summary>The decoder.</summary>
    public LlamaForCausalLM Backbone { get; }

    /// <summary>The scalar head.</summary>
    public ScalarHead Head { get; }

    /// <summary>A reward model starting from a causal-LM folder (its lm_head is not used) with a fresh head.</summary>
    public static RewardModel FromCausalLM(string folder, ModelLoadOptions? options = null)
    {
        LlamaForCausalLM backbone = LlamaForCausalLM.FromPretrained(folder, options);
        return new RewardModel(backbone, new ScalarHead(backbone.Config.HiddenSize, dtype: backbone.DType, device: backbone.Device));
    }

    /// <summary>Loads a reward-model folder written by <see cref="SavePretrained"/> (or transformers' LlamaForSequenceClassification with one label).</summary>
    /// <exception cref="InvalidDataException">The folder has no <c>score.weight</c>, or its weights do not fit the config.</exception>
    public static RewardModel FromPretrained(string folder, ModelLoadOptions? options = null)
    {
        DecoderConfig config = DecoderConfig.Load(Path.Combine(folder, "config.json")) with { TieWordEmbeddings = true }; // no lm_head
        var backbone = new LlamaForCausalLM(config, options?.DType ?? ScalarType.Float32);
        try
        {
            using var checkpoint = SafeTensorsCheckpoint.Open(folder);
            if (!checkpoint.Entries.TryGetValue("score.weight", out SafeTensorEntry? score) || score.Shape.Length != 2 || score.Shape[0] != 1)
                throw new InvalidDataException($"'{folder}' has no [1, {config.HiddenSize}] score.weight: it is not a one-label reward model.");
            checkpoint.LoadInto(backbone, new HashSet<string> { "score.weight", "lm_head.weight" });
            var head = new ScalarHead(config.HiddenSize, dtype: backbone.DType);
            using (no_grad())
            using (Tensor weight = checkpoint.Read("score.weight"))
                head.Weight.copy_(weight);
            if (options?.Device is { } device)
            {
                backbone.to(device);
                head.to(device);
            }
            backbone.SourceFolder = Path.GetFullPath(folder);
            backbone.eval();
            return new RewardModel(backbone, head);
        }
        catch
        {
            backbone.Dispose();
            throw;
        }
    }

    /// <summary>Rewards of padded sequences.</summary>
    /// <param name="inputIds">[B, T]</param>
    /// <param name="attentionMask">[B, T]</param>
    /// <returns>[B]</returns>
    public Tensor Score(Tensor inputIds, Tensor attentionMask) => Head.AtLastToken(Backbone.Forward(inputIds, attentionMask), attentionMask);

    /// <summary>Saves a sequence-classification folder: the decoder's weights without lm_head, <c>score.weight</c>, and a config with one label.</summary>
    public void SavePretrained(string folder)
    {
        Backbone.SavePretrained(folder);
        using var scope = NewDisposeScope();
        using var checkpoint = SafeTensorsCheckpoint.Open(folder);
        var tensors = checkpoint.Entries.Keys.Where(k => k != "lm_head.weight").Order(StringComparer.Ordinal)
            .Select(k => new KeyValuePair<string, Tensor>(k, checkpoint.Read(k))).Append(new("score.weight", Head.Weight)).ToList();
        checkpoint.Dispose();
        SafeTensorsCheckpoint.Save(folder, tensors);
        string configPath = Path.Combine(folder, "config.json");
        JsonObject config = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        config["architectures"] = new JsonArray("LlamaForSequenceClassification");
        config["num_labels"] = 1;
        File.WriteAllText(configPath, config.ToJsonString());
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Backbone.Dispose();
        Head.Dispose();
    }
}

/// <summary>
/// Bradley–Terry reward modelling, as TRL's <c>RewardTrainer</c>: <c>−log σ(r_chosen − r_rejected − margin)</c> (the
/// pair's <see cref="TokenizedPair.Margin"/>, 0 when absent), plus
/// <c>center_rewards_coefficient · mean((r_chosen + r_rejected)²)</c> when set, which keeps rewards centred on 0.
/// Reports <c>accuracy</c> (share of pairs with r_chosen &gt; r_rejected) and <c>margin</c>.
/// </summary>
public sealed class RewardTrainer(RewardModel model, TrainingOptions options, double centerRewardsCoefficient = 0, long padTokenId = 0)
{
    /// <summary>Trains on pairs.</summary>
    public TrainingResult Train(IReadOnlyList<TokenizedPair> train, IReadOnlyList<TokenizedPair>? eval = null, bool resume = false,
        CancellationToken cancellationToken = default)
    {
        model.Backbone.train();
        var trainable = model.Backbone.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter))
            .Append(("score.weight", model.Head.Weight)).ToList();
        var loop = new TrainingLoop<TokenizedPair>(train, trainable, Step, p => p.Source, options, eval is null ? null : () => Evaluate(eval));
        return loop.Run(resume, cancellationToken);
    }

    /// <summary>Loss, accuracy and margin over the pairs, without gradient.</summary>
    public IReadOnlyDictionary<string, double> Evaluate(IReadOnlyList<TokenizedPair> pairs) => StepAverages.Over(pairs, options.BatchSize, Step);

    StepOutput Step(IReadOnlyList<TokenizedPair> pairs)
    {
        using PreferenceBatch batch = PreferenceCollator.Collate(pairs, padTokenId, model.Backbone.Device);
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
        return new StepOutput(loss, metrics, batch.AttentionMask.sum().item<long>());
    }
}
