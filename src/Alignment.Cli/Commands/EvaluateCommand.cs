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
        var (model, sampling) = (new ModelArguments(lora: false, required: false), new SamplingArguments());
        var completions = CliOption.Text("completions", "Judge given completions instead of generating them: JSONL {prompt, candidate, baseline, category?} (no --model or --baseline).");
        var suite = CliOption.Choice("suite", "win_rate: against --baseline, judged by --judge; ifeval: verifiable instructions (IFEval's prompt format; " +
            "the built-in set without --prompts); harmlessness: refusal rate on {prompt, harmful: true} prompts and over-refusal on the rest " +
            "(refusals by stock phrases, or by --judge llm:URL), with --judge reward:FOLDER's mean scores.", "win_rate", ["win_rate", "ifeval", "harmlessness"]);
        var baseline = CliOption.Text("baseline", "The baseline model folder (e.g. the SFT model); its tokenizer is --model's.");
        var prompts = CliOption.Text("prompts", "Prompts (JSONL): {prompt} as text or messages, and an optional category; for ifeval, IFEval's format.", null, "dataset");
        var judge = CliOption.Text("judge", "reward:FOLDER (a reward model), rule:NAME (a reward function of --reward-funcs: think_format_reward, " +
            "soft_overlong_punishment …; the higher-scored completion wins), or llm:URL (an OpenAI-compatible endpoint, e.g. llm:http://localhost:11434/v1; " +
            "--judge-model names the model, OPENAI_API_KEY is sent when set).");
        var judgeModel = CliOption.Text("judge-model", "The model of an llm: judge.");
        var output = CliOption.Text("out", "The report folder: report.json, verdicts.jsonl, win_rate.png, length_effect.png (responses.jsonl for the suites).", null, "output", "output_dir");
        output.Required = true;
        var command = CliCommand.New("evaluate", "Win rate of a model against a baseline (each pair judged in both orders), or instruction following.",
            model, sampling, suite, baseline, prompts, completions, judge, judgeModel, output);
        command.SetAction(parse =>
        {
            if (parse.GetValue(completions) is { } completionsPath)
                return JudgeCompletions(context, parse, model, completionsPath, parse.GetValue(judge), parse.GetValue(judgeModel), parse.GetValue(output)!);
            if (parse.GetValue(model.Model) is null)
                throw new ArgumentException("--model is required (or give --completions to judge existing completions).");
            var (tokenizer, template) = model.Tokenizer(parse);
            GenerationOptions options = sampling.Read(parse, tokenizer);
            IChatTemplate chat = template ?? throw new ArgumentException("--model's tokenizer has no chat template; give one with --chat-template-path.");
            if (parse.GetValue(suite) == "ifeval")
                return InstructionSuite(context, parse, model, tokenizer, chat, options, parse.GetValue(prompts), parse.GetValue(output)!);
            if (parse.GetValue(suite) == "harmlessness")
                return HarmlessnessSuite(context, parse, model, tokenizer, chat, options, parse.GetValue(prompts), parse.GetValue(judge), parse.GetValue(judgeModel), parse.GetValue(output)!);
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
            return Report(context, report, folder);
        });
        return command;
    }

    /// <summary><c>--completions</c>: the win rate of completions already written, judged in both orders.</summary>
    static int JudgeCompletions(CliContext context, ParseResult parse, ModelArguments model, string path, string? judgeSpec, string? judgeModel, string folder)
    {
        var pairs = PreferenceFormats.ReadPromptExamples(path).Select(p => (new WinRatePrompt(p.Prompt, p.Columns.GetValueOrDefault("category")?.ToString()),
            Field(p, "candidate"), Field(p, "baseline"))).ToList();
        if (pairs.Count == 0)
            throw new ArgumentException($"--completions: '{path}' has no lines.");
        using var disposables = new CompositeDisposable();
        IPreferenceJudge preferenceJudge = Judge(judgeSpec ?? throw new ArgumentException("--judge is required."), judgeModel, model, parse, 256, disposables);
        WinRateReport report = WinRate.JudgeAsync(pairs, preferenceJudge, context.WritesFiles ? Path.Combine(folder, "verdicts.jsonl") : null, context.Cancel).GetAwaiter().GetResult();
        return Report(context, report, folder);
    }

    static string Field(PromptExample example, string name) =>
        example.Columns.GetValueOrDefault(name) is JsonValue value && value.TryGetValue(out string? text) ? text
            : throw new ArgumentException($"--completions: {example.Source}: field '{name}' must be a string.");

    static int Report(CliContext context, WinRateReport report, string folder)
    {
        if (context.WritesFiles)
        {
            Directory.CreateDirectory(folder);
            File.WriteAllText(Path.Combine(folder, "report.json"), Json(report).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            Plot(report, Path.Combine(folder, "win_rate.png"));
        }
        context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{report.Pairs} prompts: {report.Wins} wins, {report.Ties} ties, {report.Losses} losses → win rate {report.WinRate:P1} (95 % Wilson {report.Lower:P1}–{report.Upper:P1}); " +
            $"length-controlled {(report.LengthControlledWinRate is { } lc ? lc.ToString("P1", CultureInfo.InvariantCulture) : "n/a")}; position bias {report.PositionBiasRate:P0}; report in {folder}."));
        return 0;
    }

    /// <summary>IFEval: the model's greedy or sampled response to each prompt, checked; writes report.json and responses.jsonl.</summary>
    static int InstructionSuite(CliContext context, ParseResult parse, ModelArguments model, ModelTokenizer tokenizer, IChatTemplate chat,
        GenerationOptions options, string? promptsPath, string folder)
    {
        IReadOnlyList<InstructionPrompt> prompts = promptsPath is null ? InstructionFollowing.BuiltInPrompts : InstructionFollowing.Read(promptsPath);
        using var llm = LlamaForCausalLM.FromPretrained(model.Folder(parse), model.LoadOptions(parse));
        var generator = new ModelCompletionGenerator("model", llm, tokenizer, chat, options);
        var responses = ((ICompletionGenerator)generator).GenerateEachAsync([.. prompts.Select(p => p.Prompt)], context.Cancel).GetAwaiter().GetResult();
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

    /// <summary>Harmlessness: refusals of harmful and benign prompts, and a reward model's mean scores when --judge names one.</summary>
    static int HarmlessnessSuite(CliContext context, ParseResult parse, ModelArguments model, ModelTokenizer tokenizer, IChatTemplate chat,
        GenerationOptions options, string? promptsPath, string? judgeSpec, string? judgeModel, string folder)
    {
        string path = promptsPath ?? throw new ArgumentException("--suite harmlessness needs --prompts ({prompt, harmful: true|false} lines).");
        var prompts = PreferenceFormats.ReadPromptExamples(path).Select(p => new SafetyPrompt(p.Prompt,
            p.Columns.TryGetValue("harmful", out var flag) && flag is JsonValue value && value.TryGetValue(out bool harmful) ? harmful
                : throw new ArgumentException($"--prompts: {p.Source}: field 'harmful' must be true or false."))).ToList();
        using var disposables = new CompositeDisposable();
        IRefusalClassifier classifier = new RefusalPhrases();
        RewardModel? scorer = null;
        if (judgeSpec is { } spec && spec.StartsWith("llm:", StringComparison.Ordinal))
        {
            classifier = new LlmRefusalClassifier(LlmClient(spec[4..], judgeModel, disposables));
        }
        else if (judgeSpec is { } reward && reward.StartsWith("reward:", StringComparison.Ordinal))
        {
            scorer = RewardModel.FromPretrained(reward[7..], model.LoadOptions(parse));
            disposables.Add(scorer);
        }
        else if (judgeSpec is not null)
            throw new ArgumentException("--suite harmlessness takes --judge reward:FOLDER (scores) or llm:URL (refusals).");
        using var llm = LlamaForCausalLM.FromPretrained(model.Folder(parse), model.LoadOptions(parse));
        var generator = new ModelCompletionGenerator("model", llm, tokenizer, chat, options);
        var responses = ((ICompletionGenerator)generator).GenerateEachAsync([.. prompts.Select(p => p.Prompt)], context.Cancel).GetAwaiter().GetResult();
        HarmlessnessReport report = Harmlessness.EvaluateAsync(prompts, responses, classifier, scorer, context.Cancel).GetAwaiter().GetResult();
        if (context.WritesFiles)
        {
            Directory.CreateDirectory(folder);
            File.WriteAllText(Path.Combine(folder, "report.json"), new JsonObject
            {
                ["harmful"] = report.Harmful, ["benign"] = report.Benign,
                ["refusal_rate"] = double.IsNaN(report.RefusalRate) ? null : report.RefusalRate,
                ["over_refusal_rate"] = double.IsNaN(report.OverRefusalRate) ? null : report.OverRefusalRate,
                ["harmful_mean_score"] = report.HarmfulScore, ["benign_mean_score"] = report.BenignScore,
            }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            File.WriteAllLines(Path.Combine(folder, "responses.jsonl"), prompts.Select((p, i) => new JsonObject { ["prompt"] = p.Prompt, ["harmful"] = p.Harmful, ["response"] = responses[i] }.ToJsonString()));
        }
        context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{report.Harmful} harmful prompts: refusal rate {report.RefusalRate:P1}; {report.Benign} benign: over-refusal {report.OverRefusalRate:P1}; report in {folder}."));
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
            case "llm":
                return new LlmJudge(LlmClient(value, judgeModel, disposables), new Microsoft.Extensions.AI.ChatOptions { Temperature = 0 });
            default:
                throw new ArgumentException($"--judge: '{spec}' is none of reward:FOLDER, rule:NAME, llm:URL.");
        }
    }

    /// <summary>The client of <c>--judge llm:URL --judge-model NAME</c> (OPENAI_API_KEY sent when set), disposed with <paramref name="disposables"/>.</summary>
    static OpenAiCompatibleChatClient LlmClient(string url, string? judgeModel, CompositeDisposable disposables)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out Uri? endpoint) || endpoint.Scheme is not ("http" or "https"))
            throw new ArgumentException($"--judge: '{url}' is not an http(s) URL.");
        var client = new OpenAiCompatibleChatClient(endpoint, judgeModel ?? throw new ArgumentException("--judge llm:URL needs --judge-model."),
            Environment.GetEnvironmentVariable("OPENAI_API_KEY"));
        disposables.Add(client);
        return client;
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

        // The length effect: each pair's outcome (1 win, ½ tie, 0 loss) against the candidate's length minus the baseline's.
        var effect = new ScottPlot.Plot();
        var points = effect.Add.Scatter(report.Verdicts.Select(v => (double)(v.Candidate.Length - v.Baseline.Length)).ToArray(),
            report.Verdicts.Select(v => v.Outcome switch { PairOutcome.Win => 1.0, PairOutcome.Loss => 0.0, _ => 0.5 }).ToArray());
        points.LineWidth = 0;
        effect.Title("outcome against length difference (1 win, 0.5 tie, 0 loss)");
        effect.XLabel("candidate length − baseline length (characters)");
        effect.SavePng(Path.Combine(Path.GetDirectoryName(path)!, "length_effect.png"), 800, 450);
    }

    sealed class CompositeDisposable : IDisposable
    {
        readonly List<IDisposable> _items = [];
        public void Add(IDisposable item) => _items.Add(item);
        public void Dispose() => _items.ForEach(i => i.Dispose());
    }
}
