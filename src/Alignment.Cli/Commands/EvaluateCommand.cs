using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Alignment.Evaluation;
using Alignment.Scoring;
using Alignment.Tokenization;

namespace Alignment.Cli.Commands;

/// <summary>
/// <c>align evaluate</c>: the win rate of a model against a baseline on prompts, judged in both orders by a reward
/// model or a rule; writes report.json, verdicts.jsonl and a plot.
/// </summary>
internal static class EvaluateCommand
{
    public static Command Create(CliContext context)
    {
        var (model, sampling) = (new ModelArguments(lora: false), new SamplingArguments());
        var suite = CliOption.Choice("suite", "win_rate: against --baseline, judged by --judge; ifeval: verifiable instructions (IFEval's prompt format; " +
            "the built-in set without --prompts).", "win_rate", ["win_rate", "ifeval"]);
        var baseline = CliOption.Text("baseline", "The baseline model folder (e.g. the SFT model); its tokenizer is --model's.");
        var prompts = CliOption.Text("prompts", "Prompts (JSONL): {prompt} as text or messages, and an optional category; for ifeval, IFEval's format.", null, "dataset");
        var judge = CliOption.Text("judge", "reward:FOLDER (a reward model), rule:NAME (a reward function of --reward-funcs: think_format_reward, " +
            "soft_overlong_punishment …; the higher-scored completion wins), or llm:URL (an OpenAI-compatible endpoint, e.g. llm:http://localhost:11434/v1; " +
            "--judge-model names the model, OPENAI_API_KEY is sent when set).");
        var judgeModel = CliOption.Text("judge-model", "The model of an llm: judge.");
        var output = CliOption.Text("out", "The report folder: report.json, verdicts.jsonl, win_rate.png.", null, "output", "output_dir");
        output.Required = true;
        var command = CliCommand.New("evaluate", "Win rate of a model against a baseline (each pair judged in both orders), or instruction following.",
            model, sampling, suite, baseline, prompts, judge, judgeModel, output);
        command.SetAction(parse =>
        {
            var (tokenizer, template) = model.Tokenizer(parse);
            GenerationOptions options = sampling.Read(parse, tokenizer);
            IChatTemplate chat = template ?? throw new ArgumentException("--model's tokenizer has no chat template; give one with --chat-template-path.");
            if (parse.GetValue(suite) == "ifeval")
                return InstructionSuite(context, parse, model, tokenizer, chat, options, parse.GetValue(prompts), parse.GetValue(output)!);
            foreach (var (option, name) in new[] { (baseline, "--baseline"), (prompts, "--prompts"), (judge, "--judge") })
                if (parse.GetValue(option) is null)
                    throw new ArgumentException($"{name} is required for the win rate (or give --suite ifeval).");
            var examples = PreferenceFormats.ReadPromptExamples(parse.GetValue(prompts)!)
                .Select(p => new WinRatePrompt(p.Prompt, p.Columns.TryGetValue("category", out var category) ? category?.ToString() : null)).ToList();
            if (examples.Count == 0)
                throw new ArgumentException($"--prompts: '{parse.GetValue(prompts)}' has no prompts.");
            string folder = parse.GetValue(output)!;
            using var disposables = new CompositeDisposable();
            IPreferenceJudge preferenceJudge = Judge(parse.GetValue(judge)!, parse.GetValue(judgeModel), model, parse, options.MaxNewTokens, disposables);
            using var candidate = LlamaForCausalLM.FromPretrained(model.Folder(parse), model.LoadOptions(parse));
            using var baselineModel = LlamaForCausalLM.FromPretrained(parse.GetValue(baseline)!, model.LoadOptions(parse));
            WinRateReport report = WinRate.EvaluateAsync(examples,
                new ModelCompletionGenerator("candidate", candidate, tokenizer, chat, options),
                new ModelCompletionGenerator("baseline", baselineModel, tokenizer, chat, options),
                preferenceJudge, context.WritesFiles ? Path.Combine(folder, "verdicts.jsonl") : null, context.Cancel).GetAwaiter().GetResult();
            if (context.WritesFiles)
            {
                File.WriteAllText(Path.Combine(folder, "report.json"), Json(report).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                Plot(report, Path.Combine(folder, "win_rate.png"));
            }
            context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{report.Pairs} prompts: {report.Wins} wins, {report.Ties} ties, {report.Losses} losses → win rate {report.WinRate:P1} (95 % Wilson {report.Lower:P1}–{report.Upper:P1}); " +
                $"length-controlled {(report.LengthControlledWinRate is { } lc ? lc.ToString("P1", CultureInfo.InvariantCulture) : "n/a")}; position bias {report.PositionBiasRate:P0}; report in {folder}."));
            return 0;
        });
        return command;
    }

    /// <summary>IFEval: the model's greedy or sampled response to each prompt, checked; writes report.json and responses.jsonl.</summary>
    static int InstructionSuite(CliContext context, ParseResult parse, ModelArguments model, ModelTokenizer tokenizer, IChatTemplate chat,
        GenerationOptions options, string? promptsPath, string folder)
    {
        IReadOnlyList<InstructionPrompt> prompts = promptsPath is null ? InstructionFollowing.BuiltInPrompts : InstructionFollowing.Read(promptsPath);
        using var llm = LlamaForCausalLM.FromPretrained(model.Folder(parse), model.LoadOptions(parse));
        var generator = new ModelCompletionGenerator("model", llm, tokenizer, chat, options);
        var responses = prompts.Select(p => generator.GenerateAsync(p.Prompt, 1, context.Cancel).GetAwaiter().GetResult()[0]).ToList();
        InstructionFollowingReport report = InstructionFollowing.Evaluate(prompts, responses);
        if (context.WritesFiles)
        {
            Directory.CreateDirectory(folder);
            File.WriteAllText(Path.Combine(folder, "report.json"), new JsonObject
            {
                ["prompts"] = prompts.Count, ["prompt_level_strict"] = report.PromptStrict, ["prompt_level_loose"] = report.PromptLoose,
                ["instruction_level_strict"] = report.InstructionStrict, ["instruction_level_loose"] = report.InstructionLoose,
                ["by_instruction"] = new JsonObject(report.ByInstruction.Select(kv => new KeyValuePair<string, JsonNode?>(kv.Key, kv.Value))),
            }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            File.WriteAllLines(Path.Combine(folder, "responses.jsonl"), prompts.Select((p, i) => new JsonObject { ["key"] = p.Key, ["prompt"] = p.Prompt, ["response"] = responses[i] }.ToJsonString()));
        }
        context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{prompts.Count} prompts: prompt-level strict {report.PromptStrict:P1}, loose {report.PromptLoose:P1}; instruction-level strict {report.InstructionStrict:P1}, loose {report.InstructionLoose:P1}; report in {folder}."));
        return 0;
    }

    /// <summary>The judge named by <c>--judge</c>; what it loads is disposed with <paramref name="disposables"/>.</summary>
    static IPreferenceJudge Judge(string spec, string? judgeModel, ModelArguments model, ParseResult parse, int maxNewTokens, CompositeDisposable disposables)
    {
        int colon = spec.IndexOf(':');
        string kind = colon < 0 ? spec : spec[..colon], value = colon < 0 ? "" : spec[(colon + 1)..];
        switch (kind)
        {
            case "reward" when Directory.Exists(value):
                var reward = RewardModel.FromPretrained(value, model.LoadOptions(parse));
                disposables.Add(reward);
                return new RewardModelJudge(reward, Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(value))));
            case "reward":
                throw new DirectoryNotFoundException($"--judge: the reward model folder '{value}' does not exist.");
            case "rule":
                IRewardFunction function = RewardArguments.BuiltIn(value, "solution", maxNewTokens, maxNewTokens / 5)
                    ?? throw new ArgumentException($"--judge: unknown rule '{value}'; the rules are the built-in reward functions ({string.Join(", ", RewardArguments.BuiltInNames)}).");
                return RuleJudge.FromScore(function.Name, (prompt, completion) =>
                    function.Score([new RewardSample(prompt, completion, [], new Dictionary<string, JsonNode?>())])[0] ?? 0);
            case "llm" when Uri.TryCreate(value, UriKind.Absolute, out Uri? endpoint) && endpoint.Scheme is "http" or "https":
                var client = new OpenAiCompatibleChatClient(endpoint, judgeModel ?? throw new ArgumentException("--judge llm:URL needs --judge-model."),
                    Environment.GetEnvironmentVariable("OPENAI_API_KEY"));
                disposables.Add(client);
                return new LlmJudge(client, new Microsoft.Extensions.AI.ChatOptions { Temperature = 0 });
            case "llm":
                throw new ArgumentException($"--judge: '{value}' is not an http(s) URL.");
            default:
                throw new ArgumentException($"--judge: '{spec}' is none of reward:FOLDER, rule:NAME, llm:URL.");
        }
    }

    static JsonObject Json(WinRateReport report) => new()
    {
        ["pairs"] = report.Pairs, ["wins"] = report.Wins, ["ties"] = report.Ties, ["losses"] = report.Losses,
        ["win_rate"] = report.WinRate, ["win_rate_lower"] = report.Lower, ["win_rate_upper"] = report.Upper, ["interval"] = "Wilson score, 95 %, ties as half",
        ["length_controlled_win_rate"] = report.LengthControlledWinRate, ["position_bias_rate"] = report.PositionBiasRate,
        ["candidate_mean_length"] = report.CandidateLength, ["baseline_mean_length"] = report.BaselineLength,
        ["by_category"] = new JsonObject(report.ByCategory.Select(kv => new KeyValuePair<string, JsonNode?>(kv.Key, Json(kv.Value)))),
    };

    /// <summary>Win / tie / loss bars with the win rate and its interval.</summary>
    static void Plot(WinRateReport report, string path)
    {
        var plot = new ScottPlot.Plot();
        plot.Add.Bars([report.Wins, report.Ties, report.Losses]);
        plot.Axes.Bottom.SetTicks([0, 1, 2], ["wins", "ties", "losses"]);
        plot.Title(string.Create(CultureInfo.InvariantCulture, $"win rate {report.WinRate:P1} (95 % {report.Lower:P1}–{report.Upper:P1}), length-controlled " +
            $"{(report.LengthControlledWinRate is { } lc ? lc.ToString("P1", CultureInfo.InvariantCulture) : "n/a")}"));
        plot.YLabel("pairs");
        plot.SavePng(path, 800, 450);
    }

    sealed class CompositeDisposable : IDisposable
    {
        readonly List<IDisposable> _items = [];
        public void Add(IDisposable item) => _items.Add(item);
        public void Dispose() => _items.ForEach(i => i.Dispose());
    }
}
