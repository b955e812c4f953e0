using System.Globalization;
using System.Text.Json.Nodes;
using Alignment.Data;
using Alignment.Losses;
using Alignment.Models;
using Alignment.Native;
using Alignment.Rl;
using Alignment.Tokenization;
using Alignment.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Cli;

/// <summary>Command-line options: <c>--name value</c> pairs (TRL's names, kebab-case) and flags, optionally from <c>--config FILE</c>.</summary>
internal sealed class CliOptions
{
    static readonly HashSet<string> Flags = ["resume", "precompute-ref-logps", "skip-bad-rows", "help"];
    readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);

    public static CliOptions Parse(IEnumerable<string> args)
    {
        var options = new CliOptions();
        var list = args.ToList();
        for (int i = 0; i < list.Count; i++)
        {
            if (!list[i].StartsWith("--", StringComparison.Ordinal))
                throw new ArgumentException($"unexpected argument '{list[i]}'; options look like --name value.");
            string name = list[i][2..].Replace('_', '-');
            if (Flags.Contains(name))
                options._values[name] = "true";
            else if (i + 1 < list.Count)
                options._values[name] = list[++i];
            else
                throw new ArgumentException($"--{name} needs a value.");
        }
        if (options._values.TryGetValue("config", out string? config))
            options.MergeConfig(config);
        return options;
    }

    void MergeConfig(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"--config: no file at '{path}'.", path);
        JsonObject json = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new ArgumentException($"--config: '{path}' is not a JSON object.");
        foreach (var (key, value) in json)
            _values.TryAdd(key.Replace('_', '-'), value switch { JsonValue v when v.TryGetValue(out string? s) => s, _ => value?.ToJsonString() ?? "" });
    }

    public bool Has(string name) => _values.ContainsKey(name);

    public string Required(string name) => _values.TryGetValue(name, out string? value) ? value : throw new ArgumentException($"--{name} is required.");

    public string? String(string name) => _values.GetValueOrDefault(name);

    public bool Flag(string name) => _values.TryGetValue(name, out string? value) && value is "true" or "True" or "1";

    public double Double(string name, double fallback)
    {
        if (!_values.TryGetValue(name, out string? text))
            return fallback;
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) && double.IsFinite(value) ? value
            : throw new ArgumentException($"--{name} must be a number, got '{text}'.");
    }

    public int? Int(string name)
    {
        if (!_values.TryGetValue(name, out string? text))
            return null;
        return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) ? value
            : throw new ArgumentException($"--{name} must be an integer, got '{text}'.");
    }
}

/// <summary>The <c>align</c> command: <c>sft</c>, <c>reward</c>, <c>dpo</c>, <c>generate</c>, <c>evaluate</c>, <c>chat</c>.</summary>
public static class AlignCli
{
    const string Usage = """
        usage: align COMMAND [--option value ...] [--config FILE]
          sft       --model DIR --dataset FILE.jsonl --output DIR            supervised fine-tuning
          reward    --model DIR --dataset PAIRS.jsonl --output DIR           reward model (Bradley–Terry)
          dpo       --model DIR --dataset PAIRS.jsonl --output DIR [--loss NAME[,NAME…]] [--reference DIR]
          generate  --model DIR --prompt TEXT                                sample a reply
          evaluate  --model DIR --reference DIR --dataset PAIRS.jsonl        implicit-reward accuracy and margins
          chat      --model DIR                                              interactive chat
          ppo|grpo|rloo --model DIR --reward-model DIR --dataset PROMPTS.jsonl --output DIR   RLHF against a reward model
        common: --eval-dataset --learning-rate --batch-size --gradient-accumulation-steps --epochs --max-steps
                --max-length --max-prompt-length --max-completion-length --lora-rank --lora-alpha --seed
                --device --dtype --resume --save-steps --eval-steps --warmup-ratio --skip-bad-rows
        dpo:    --beta --label-smoothing --loss-weights --rpo-alpha --precompute-ref-logps (any loss in PreferenceLosses.Names)
        sample: --max-new-tokens --temperature --top-k --top-p
        rl:     --kl-coef --cliprange --cliprange-value --vf-coef --gamma --lam --num-ppo-epochs --num-mini-batches
                --response-length --temperature --missing-eos-penalty --num-generations --max-steps (iterations)
                --batch-size (prompts per iteration) --save-steps
        """;

    /// <summary>Runs a command; returns the exit code (0 success, 2 bad arguments or data, 1 other failure).</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error, TextReader? input = null, CancellationToken cancellationToken = default)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            output.WriteLine(Usage);
            return args.Length == 0 ? 2 : 0;
        }
        try
        {
            CliOptions options = CliOptions.Parse(args.Skip(1));
            TorchRuntime.EnsureLoaded();
            return args[0] switch
            {
                "sft" => Sft(options, output, cancellationToken),
                "reward" => Reward(options, output, cancellationToken),
                "dpo" => Preference(options, output, cancellationToken),
                "generate" => Generate(options, output),
                "evaluate" => Evaluate(options, output),
                "chat" => Chat(options, output, input ?? Console.In),
                "ppo" => Rl(options, RlAlgorithm.Ppo, output, cancellationToken),
                "grpo" => Rl(options, RlAlgorithm.Grpo, output, cancellationToken),
                "rloo" => Rl(options, RlAlgorithm.Rloo, output, cancellationToken),
                _ => throw new ArgumentException($"unknown command '{args[0]}'; commands: sft, reward, dpo, generate, evaluate, chat, ppo, grpo, rloo."),
            };
        }
        catch (Exception e) when (e is ArgumentException or FileNotFoundException or DirectoryNotFoundException or InvalidDataException
                                      or FormatException or NotSupportedException)
        {
            error.WriteLine($"align: error: {e.Message}");
            return 2;
        }
        catch (Exception e) when (e is InvalidOperationException or IOException)
        {
            error.WriteLine($"align: failed: {e.Message}");
            return 1;
        }
    }

    static ModelLoadOptions LoadOptions(CliOptions o) => new()
    {
        DType = o.String("dtype") switch
        {
            null or "float32" or "fp32" => ScalarType.Float32,
            "bfloat16" or "bf16" => ScalarType.BFloat16,
            "float16" or "fp16" => ScalarType.Float16,
            var other => throw new ArgumentException($"--dtype '{other}' is not one of float32, bfloat16, float16."),
        },
        Device = o.String("device") is { } device ? torch.device(device) : null,
    };

    static TrainingOptions TrainingOptionsOf(CliOptions o, double defaultLearningRate, TextWriter output) => new()
    {
        LearningRate = o.Double("learning-rate", defaultLearningRate),
        WarmupRatio = o.Double("warmup-ratio", 0),
        WeightDecay = o.Double("weight-decay", 0),
        BatchSize = o.Int("batch-size") ?? 8,
        GradientAccumulationSteps = o.Int("gradient-accumulation-steps") ?? 1,
        Epochs = o.Int("epochs") ?? 1,
        MaxSteps = o.Int("max-steps"),
        Seed = o.Int("seed") ?? 42,
        SaveSteps = o.Int("save-steps"),
        EvalSteps = o.Int("eval-steps"),
        MaxGradNorm = o.Double("max-grad-norm", 1.0),
        OutputDir = o.Required("output"),
        Progress = new ConsoleProgress(output),
    };

    static TokenizationOptions TokenizationOf(CliOptions o) => new()
    {
        MaxLength = o.Int("max-length"),
        MaxPromptLength = o.Int("max-prompt-length"),
        MaxCompletionLength = o.Int("max-completion-length"),
    };

    static (ModelTokenizer Tokenizer, IChatTemplate? Template) TokenizerOf(string folder)
    {
        var tokenizer = ModelTokenizer.FromFolder(folder);
        return (tokenizer, tokenizer.ChatTemplateSource is null ? null : ChatTemplates.For(tokenizer));
    }

    static DataReadOptions ReadOptions(CliOptions o) => new() { SkipBadRows = o.Flag("skip-bad-rows") };

    static void RequireFile(CliOptions o, string name)
    {
        string path = o.Required(name);
        if (!File.Exists(path))
            throw new FileNotFoundException($"--{name}: no file at '{path}'.", path);
    }

    static PolicyModel LoadPolicy(CliOptions o)
    {
        var model = LlamaForCausalLM.FromPretrained(o.Required("model"), LoadOptions(o));
        if (o.Int("lora-rank") is { } rank)
            LoraAdapters.Attach(model, new LoraOptions { Rank = rank, Alpha = o.Double("lora-alpha", 2.0 * rank), Dropout = o.Double("lora-dropout", 0) });
        return new PolicyModel(model);
    }

    static int Sft(CliOptions o, TextWriter output, CancellationToken cancellationToken)
    {
        RequireFile(o, "dataset");
        TrainingOptions training = TrainingOptionsOf(o, 2e-5, output);
        var (tokenizer, template) = TokenizerOf(o.Required("model"));
        var tokenize = new PreferenceTokenizer(tokenizer, template, TokenizationOf(o));
        var report = new TokenizationReport();
        List<TokenizedCompletion> Read(string path) =>
            PreferenceFormats.ReadSft(path, ReadOptions(o)).Select(e => tokenize.Tokenize(e, report)).OfType<TokenizedCompletion>().ToList();
        var train = Read(o.Required("dataset"));
        var eval = o.String("eval-dataset") is { } e ? Read(e) : null;
        using PolicyModel policy = LoadPolicy(o);
        TrainingResult result = new SftTrainer(policy, training, tokenizer.PadTokenId ?? 0).Train(train, eval, o.Flag("resume"), cancellationToken);
        return Finish(policy.Model, result, o, output, report);
    }

    static int Reward(CliOptions o, TextWriter output, CancellationToken cancellationToken)
    {
        RequireFile(o, "dataset");
        TrainingOptions training = TrainingOptionsOf(o, 1e-5, output);
        var (tokenizer, template) = TokenizerOf(o.Required("model"));
        var report = new TokenizationReport();
        var tokenize = new PreferenceTokenizer(tokenizer, template, TokenizationOf(o));
        var train = tokenize.TokenizeAll(PreferenceData.ReadPairs(o.Required("dataset"), ReadOptions(o)), report).ToList();
        using RewardModel model = RewardModel.FromCausalLM(o.Required("model"), LoadOptions(o));
        TrainingResult result = new RewardTrainer(model, training, o.Double("center-rewards-coefficient", 0), tokenizer.PadTokenId ?? 0)
            .Train(train, null, o.Flag("resume"), cancellationToken);
        model.SavePretrained(o.Required("output"));
        output.WriteLine($"{report}; saved the reward model to {o.Required("output")} after {result.Steps} steps.");
        return 0;
    }

    static IPreferenceLoss LossOf(CliOptions o)
    {
        var options = new PreferenceLossOptions
        {
            Beta = o.Double("beta", 0.1),
            LabelSmoothing = o.Double("label-smoothing", 0),
            RpoAlpha = o.Has("rpo-alpha") ? o.Double("rpo-alpha", 0) : null,
            SimpoGamma = o.Double("simpo-gamma", 0.5),
            DesirableWeight = o.Double("desirable-weight", 1),
            UndesirableWeight = o.Double("undesirable-weight", 1),
        };
        string[] names = (o.String("loss") ?? "sigmoid").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        double[]? weights = o.String("loss-weights")?.Split(',').Select(w => double.Parse(w, CultureInfo.InvariantCulture)).ToArray();
        return PreferenceLosses.Create(names, weights, options);
    }

    static int Preference(CliOptions o, TextWriter output, CancellationToken cancellationToken)
    {
        IPreferenceLoss loss = LossOf(o);          // unknown names and bad values fail here, before any loading
        RequireFile(o, "dataset");
        TrainingOptions training = TrainingOptionsOf(o, 1e-6, output);
        var (tokenizer, template) = TokenizerOf(o.Required("model"));
        var tokenize = new PreferenceTokenizer(tokenizer, template, TokenizationOf(o));
        var report = new TokenizationReport();
        long pad = tokenizer.PadTokenId ?? 0;
        using PolicyModel policy = LoadPolicy(o);
        using ReferenceModel? reference = !loss.Requirements.Reference ? null
            : o.String("reference") is { } folder ? ReferenceModel.Own(LlamaForCausalLM.FromPretrained(folder, LoadOptions(o)))
            : policy.CreateReference();        // without --reference, the starting model is the reference
        TrainingResult result;
        if (loss.Requirements.Data == PreferenceDataKind.Unpaired)
        {
            var train = PreferenceFormats.ReadUnpaired(o.Required("dataset"), ReadOptions(o)).Select(r => tokenize.Tokenize(r, report)).OfType<TokenizedCompletion>().ToList();
            result = new PreferenceTrainer(policy, loss, training, reference, padTokenId: pad).Train(train, o.Flag("resume"), cancellationToken);
        }
        else
        {
            var train = tokenize.TokenizeAll(PreferenceData.ReadPairs(o.Required("dataset"), ReadOptions(o)), report).ToList();
            var eval = o.String("eval-dataset") is { } e ? tokenize.TokenizeAll(PreferenceData.ReadPairs(e, ReadOptions(o)), report).ToList() : null;
            ReferenceLogProbs? precomputed = null;
            if (reference is not null && o.Flag("precompute-ref-logps"))
            {
                precomputed = ReferenceLogProbs.Compute(reference, [.. train, .. eval ?? []], training.BatchSize, pad);
                precomputed.Save(Path.Combine(training.OutputDir!, "reference_logps.tsv"));
            }
            result = new PreferenceTrainer(policy, loss, training, precomputed is null ? reference : null, precomputed, pad)
                .Train(train, eval, o.Flag("resume"), cancellationToken);
        }
        return Finish(policy.Model, result, o, output, report);
    }

    static int Finish(LlamaForCausalLM model, TrainingResult result, CliOptions o, TextWriter output, TokenizationReport report)
    {
        string folder = o.Required("output");
        model.SavePretrained(folder);
        output.WriteLine();
        output.WriteLine($"{report}. {result.Steps}/{result.TotalSteps} steps{(result.StoppedEarly ? " (stopped early)" : "")}; " +
                         $"model saved to {folder}, metrics in {Path.Combine(folder, "metrics.jsonl")}.");
        return 0;
    }

    static GenerationOptions SamplingOf(CliOptions o, ModelTokenizer tokenizer) => new()
    {
        MaxNewTokens = o.Int("max-new-tokens") ?? 128,
        Temperature = o.Double("temperature", 0.7),
        TopK = o.Int("top-k") ?? 0,
        TopP = o.Double("top-p", 1.0),
        Seed = o.Int("seed"),
        EosTokenIds = tokenizer.EosTokenIds.Select(i => (long)i).ToArray(),
    };

    static string Reply(LlamaForCausalLM model, ModelTokenizer tokenizer, IChatTemplate? template, IReadOnlyList<ChatMessage> conversation, GenerationOptions sampling)
    {
        IReadOnlyList<int> ids = template is not null
            ? tokenizer.Encode(template.Render(conversation, addGenerationPrompt: true))
            : tokenizer.EncodeContent(conversation[^1].Content);
        Completion reply = TextGenerator.Generate(model, [ids.Select(i => (long)i).ToArray()], sampling)[0];
        return tokenizer.Decode(reply.Tokens, skipSpecialTokens: true).Trim();
    }

    static int Generate(CliOptions o, TextWriter output)
    {
        var (tokenizer, template) = TokenizerOf(o.Required("model"));
        using var model = LlamaForCausalLM.FromPretrained(o.Required("model"), LoadOptions(o));
        output.WriteLine(Reply(model, tokenizer, template, [new ChatMessage("user", o.Required("prompt"))], SamplingOf(o, tokenizer)));
        return 0;
    }

    static int Chat(CliOptions o, TextWriter output, TextReader input)
    {
        var (tokenizer, template) = TokenizerOf(o.Required("model"));
        if (template is null)
            throw new NotSupportedException($"'{o.Required("model")}' has no chat template.");
        using var model = LlamaForCausalLM.FromPretrained(o.Required("model"), LoadOptions(o));
        var conversation = new List<ChatMessage>();
        if (o.String("system") is { } system)
            conversation.Add(new ChatMessage("system", system));
        output.WriteLine("Type a message; an empty line or /quit ends the chat.");
        while (true)
        {
            output.Write("> ");
            string? line = input.ReadLine();
            if (string.IsNullOrWhiteSpace(line) || line.Trim() == "/quit")
                return 0;
            conversation.Add(new ChatMessage("user", line));
            string reply = Reply(model, tokenizer, template, conversation, SamplingOf(o, tokenizer));
            conversation.Add(new ChatMessage("assistant", reply));
            output.WriteLine(reply);
        }
    }

    static int Evaluate(CliOptions o, TextWriter output)
    {
        RequireFile(o, "dataset");
        var (tokenizer, template) = TokenizerOf(o.Required("model"));
        var pairs = new PreferenceTokenizer(tokenizer, template, TokenizationOf(o)).TokenizeAll(
            PreferenceData.ReadPairs(o.Required("dataset"), ReadOptions(o)), new TokenizationReport()).ToList();
        using var policy = new PolicyModel(LlamaForCausalLM.FromPretrained(o.Required("model"), LoadOptions(o)));
        using var reference = ReferenceModel.Own(LlamaForCausalLM.FromPretrained(o.Required("reference"), LoadOptions(o)));
        var trainer = new PreferenceTrainer(policy, PreferenceLosses.Dpo(beta: o.Double("beta", 0.1)),
            new TrainingOptions { BatchSize = o.Int("batch-size") ?? 8 }, reference, padTokenId: tokenizer.PadTokenId ?? 0);
        foreach (var (name, value) in trainer.Evaluate(pairs).OrderBy(kv => kv.Key, StringComparer.Ordinal))
            output.WriteLine(FormattableString.Invariant($"{name}\t{value:G6}"));
        return 0;
    }

    static int Rl(CliOptions o, RlAlgorithm algorithm, TextWriter output, CancellationToken cancellationToken)
    {
        var options = new PpoOptions
        {
            Algorithm = algorithm,
            Iterations = o.Int("max-steps") ?? 100,
            PromptsPerIteration = o.Int("batch-size") ?? 8,
            NumGenerations = o.Int("num-generations") ?? 4,
            PpoEpochs = o.Int("num-ppo-epochs") ?? 4,
            MiniBatches = o.Int("num-mini-batches") ?? 1,
            LearningRate = o.Double("learning-rate", 3e-6),
            KlCoef = o.Double("kl-coef", 0.05),
            KlEstimator = o.String("kl-estimator") is "k3" ? KlEstimator.K3 : KlEstimator.K1,
            ClipRange = o.Double("cliprange", 0.2),
            ClipRangeValue = o.Double("cliprange-value", 0.2),
            VfCoef = o.Double("vf-coef", 0.1),
            Gamma = o.Double("gamma", 1.0),
            Lambda = o.Double("lam", 0.95),
            ResponseLength = o.Int("response-length") ?? 53,
            Temperature = o.Double("temperature", 0.7),
            TopK = o.Int("top-k") ?? 0,
            TopP = o.Double("top-p", 1.0),
            GradientAccumulationSteps = o.Int("gradient-accumulation-steps") ?? 1,
            MissingEosPenalty = o.Has("missing-eos-penalty") ? o.Double("missing-eos-penalty", 0) : null,
            Seed = o.Int("seed") ?? 42,
            SaveSteps = o.Int("save-steps"),
            OutputDir = o.Required("output"),
            Progress = new ConsoleProgress(output),
        };
        options.Validate();                                   // bad values fail before anything loads
        RequireFile(o, "dataset");
        string rewardFolder = o.Required("reward-model");
        var prompts = PreferenceFormats.ReadPrompts(o.Required("dataset"), ReadOptions(o)).ToList();
        var (tokenizer, template) = TokenizerOf(o.Required("model"));
        using PolicyModel policy = LoadPolicy(o);
        using ReferenceModel reference = o.String("reference") is { } folder ? ReferenceModel.Own(LlamaForCausalLM.FromPretrained(folder, LoadOptions(o)))
            : policy.CreateReference();
        using RewardModel rewardModel = RewardModel.FromPretrained(rewardFolder, LoadOptions(o));
        var (rewardTokenizer, rewardTemplate) = TokenizerOf(rewardFolder);
        var loop = new PpoLoop(policy, reference, new RewardModelScorer(rewardModel, rewardTokenizer, rewardTemplate), tokenizer, template, options);
        var history = loop.Train(prompts, cancellationToken, o.Flag("resume"));
        policy.Model.SavePretrained(o.Required("output"));
        output.WriteLine();
        if (history.Count > 0)
            output.WriteLine(FormattableString.Invariant(
                $"objective/scores {history[0]["objective/scores"]:F4} → {history[^1]["objective/scores"]:F4}, objective/kl {history[^1]["objective/kl"]:F4}; model saved to {o.Required("output")}."));
        return 0;
    }

    /// <summary>A progress bar on an interactive terminal, plain log lines otherwise.</summary>
    sealed class ConsoleProgress(TextWriter output) : IProgress<TrainingProgress>
    {
        readonly bool _interactive = ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected;

        public void Report(TrainingProgress p)
        {
            double loss = p.Metrics.GetValueOrDefault("loss");
            TimeSpan eta = p.Step == 0 ? TimeSpan.Zero : p.Elapsed / p.Step * (p.TotalSteps - p.Step);
            if (_interactive)
            {
                int filled = (int)(30.0 * p.Step / p.TotalSteps);
                output.Write($"\r[{new string('#', filled)}{new string('.', 30 - filled)}] {p.Step}/{p.TotalSteps} loss {loss:F4} ETA {eta:hh\\:mm\\:ss}   ");
            }
            else
            {
                output.WriteLine(FormattableString.Invariant($"step {p.Step}/{p.TotalSteps} loss {loss:F4} eta {eta:hh\\:mm\\:ss}"));
            }
        }
    }
}
