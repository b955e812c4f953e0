using System.Text.Json.Nodes;
using Alignment.Scoring;
using Alignment.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Models;

/// <summary>
/// A reward model: a Llama-family decoder and a <see cref="ScalarHead"/> read at the last real token, saved as a
/// transformers <c>…ForSequenceClassification</c> folder of the family (<c>model.*</c> or GPT-2's <c>transformer.*</c>, and
/// <c>score.weight</c>, one label).
/// </summary>
public sealed class RewardModel : IRewardModel, IDisposable
{
    /// <summary>Wraps a decoder and a head (this object then owns both).</summary>
    /// <param name="backbone">The decoder.</param>
    /// <param name="head">The scalar head.</param>
    /// <param name="tokenizer">The tokenizer that <see cref="Score(IReadOnlyList{string}, IReadOnlyList{string})"/> encodes text with; null = text scoring unavailable.</param>
    /// <param name="template">The chat template for text scoring (prompt as user turn, completion as assistant turn); null = plain concatenation.</param>
    public RewardModel(LlamaForCausalLM backbone, ScalarHead head, ModelTokenizer? tokenizer = null, IChatTemplate? template = null)
    {
        Backbone = backbone ?? throw new ArgumentNullException(nameof(backbone));
        Head = head ?? throw new ArgumentNullException(nameof(head));
        tokenizer?.EnsureFits(backbone.Config.VocabSize);
        Tokenizer = tokenizer;
        Template = template;
    }

    /// <summary>The tokenizer used to score text, if any (loaded with the folder when it has tokenizer files).</summary>
    public ModelTokenizer? Tokenizer { get; }

    /// <summary>The chat template used to score text, if any.</summary>
    public IChatTemplate? Template { get; }

    /// <summary>The decoder.</summary>
    public LlamaForCausalLM Backbone { get; }

    /// <summary>The scalar head.</summary>
    public ScalarHead Head { get; }

    /// <summary>A reward model starting from a causal-LM folder (its lm_head is not used) with a fresh head, and the folder's tokenizer when it has one.</summary>
    /// <param name="folder">The Hugging Face causal-LM folder.</param>
    /// <param name="options">Device and dtype; defaults when null.</param>
    /// <param name="seed">Seed of the fresh head's weights (the same head on every run and every process); null draws from TorchSharp's global generator.</param>
    public static RewardModel FromCausalLM(string folder, ModelLoadOptions? options = null, long? seed = null)
    {
        LlamaForCausalLM backbone = LlamaForCausalLM.FromPretrained(folder, options);
        var (tokenizer, template) = TokenizerOf(folder);
        using Generator? generator = seed is { } value ? new Generator((ulong)value) : null;
        var head = new ScalarHead(backbone.Config.HiddenSize, dtype: backbone.DType, device: backbone.Device, generator: generator);
        return new RewardModel(backbone, head, tokenizer, template);
    }

    /// <summary>The folder's tokenizer and chat template, when it has tokenizer files.</summary>
    static (ModelTokenizer?, IChatTemplate?) TokenizerOf(string folder)
    {
        if (!File.Exists(Path.Combine(folder, "tokenizer.json")) && !File.Exists(Path.Combine(folder, "tokenizer.model")))
            return (null, null);
        var tokenizer = ModelTokenizer.FromFolder(folder);
        return (tokenizer, tokenizer.ChatTemplateSource is null ? null : ChatTemplates.For(tokenizer));
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
            backbone.LoadWeights(checkpoint, "score.weight");
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
            var (tokenizer, template) = TokenizerOf(folder);
            return new RewardModel(backbone, head, tokenizer, template);
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

    /// <summary>The reward of each completion, without gradient: the prompt as a user turn and the completion as the assistant turn.</summary>
    /// <exception cref="InvalidOperationException">The model has no tokenizer.</exception>
    public IReadOnlyList<double> Score(IReadOnlyList<string> prompts, IReadOnlyList<string> completions)
    {
        ModelTokenizer tokenizer = Tokenizer ?? throw new InvalidOperationException(
            "This reward model has no tokenizer: load it from a folder with tokenizer files, or pass one to the constructor.");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var scores = new List<double>(prompts.Count);
        for (int i = 0; i < prompts.Count; i++)
        {
            Tensor input = tensor(ExchangeEncoding.Encode(tokenizer, Template, prompts[i], completions[i]), device: Backbone.Device).unsqueeze(0);
            scores.Add(Score(input, ones_like(input)).to_type(ScalarType.Float64).item<double>());
        }
        return scores;
    }

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
        config["architectures"] = new JsonArray(SequenceClassification(Backbone.Config.ModelType));
        config["num_labels"] = 1;
        File.WriteAllText(configPath, config.ToJsonString());
    }

    /// <summary>transformers' sequence-classification class of a family (what <c>AutoModelForSequenceClassification</c> builds).</summary>
    internal static string SequenceClassification(string modelType) => modelType switch
    {
        "gpt2" => "GPT2ForSequenceClassification",
        "mistral" => "MistralForSequenceClassification",
        "qwen2" => "Qwen2ForSequenceClassification",
        "qwen3" => "Qwen3ForSequenceClassification",
        "gemma" => "GemmaForSequenceClassification",
        "gemma2" => "Gemma2ForSequenceClassification",
        "gemma3_text" => "Gemma3TextForSequenceClassification",
        "phi3" => "Phi3ForSequenceClassification",
        _ => "LlamaForSequenceClassification",
    };

    /// <inheritdoc />
    public void Dispose()
    {
        Backbone.Dispose();
        Head.Dispose();
    }
}
