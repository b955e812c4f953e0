using System.Text.Json.Nodes;
using Alignment.Tokenization;

namespace Alignment.Data;

/// <summary>One completion labelled desirable or undesirable (KTO data).</summary>
/// <param name="Source">Where it was read.</param>
public abstract record UnpairedRecord(SourceLocation Source);

/// <summary>An unpaired example as text or messages.</summary>
public sealed record UnpairedExample(Content Prompt, Content Completion, bool Desirable, SourceLocation Source) : UnpairedRecord(Source);

/// <summary>An unpaired example as token ids (<c>prompt_input_ids</c>, <c>completion_input_ids</c>, <c>label</c>).</summary>
public sealed record PretokenizedUnpaired(int[] Prompt, int[] Completion, bool Desirable, SourceLocation Source) : UnpairedRecord(Source);

/// <summary>A supervised fine-tuning example: the loss covers <see cref="Completion"/> only; <see cref="Prompt"/> may be empty text.</summary>
public sealed record SftExample(Content Prompt, Content Completion, SourceLocation Source);

/// <summary>How scored completions become pairs.</summary>
public enum RatingPairing
{
    /// <summary>Every pair of completions whose scores differ by at least the minimum gap, the higher one chosen.</summary>
    AllPairsAboveGap,

    /// <summary>One pair per prompt: the best-scored completion against the worst (if their gap reaches the minimum).</summary>
    BestVsWorst,
}

/// <summary>A pair resolved from several raters' votes.</summary>
/// <param name="Pair">The majority's chosen/rejected pair.</param>
/// <param name="Agreement">Share of votes for the majority side, in (0.5, 1].</param>
/// <param name="Flagged">Whether disagreement (1 − agreement) exceeds the threshold.</param>
public sealed record VotedPair(PreferencePair Pair, double Agreement, bool Flagged);

/// <summary>Readers and converters for unpaired, SFT, rated and multi-rater data.</summary>
public static class PreferenceFormats
{
    /// <summary>
    /// Streams unpaired (KTO) examples: <c>{"prompt", "completion", "label": true|false}</c> as text or messages, or
    /// <c>{"prompt_input_ids", "completion_input_ids", "label"}</c>.
    /// </summary>
    /// <exception cref="DataFormatException">A bad line, naming file, line and field (unless skipped).</exception>
    public static IEnumerable<UnpairedRecord> ReadUnpaired(string path, DataReadOptions? options = null, DataReadReport? report = null) =>
        Read(path, options, report, ParseUnpaired);

    /// <summary>
    /// Streams SFT examples: <c>{"prompt", "completion"}</c> (text or messages), <c>{"messages": [...]}</c> (the last assistant
    /// message is the completion, everything before it the prompt), or <c>{"text"}</c> (all of it is the completion).
    /// </summary>
    public static IEnumerable<SftExample> ReadSft(string path, DataReadOptions? options = null, DataReadReport? report = null) =>
        Read(path, options, report, ParseSft);

    /// <summary>
    /// Streams pairs from rated completions: <c>{"prompt", "completions": [...], "ratings": [...]}</c> (text or assistant
    /// messages, numeric scores such as 1–5), paired as <paramref name="pairing"/> says. A prompt whose scores are all
    /// within <paramref name="minimumGap"/> gives no pair.
    /// </summary>
    public static IEnumerable<PreferencePair> ReadRated(string path, RatingPairing pairing = RatingPairing.AllPairsAboveGap, double minimumGap = 1,
        DataReadOptions? options = null, DataReadReport? report = null)
    {
        if (!(minimumGap > 0))
            throw new ArgumentOutOfRangeException(nameof(minimumGap), minimumGap, "The minimum score gap must be > 0.");
        return Read(path, options, report, (json, source) => ParseRated(json, source, pairing, minimumGap)).SelectMany(p => p);
    }

    /// <summary>
    /// Streams pairs voted by several raters: <c>{"prompt", "completion_a", "completion_b", "votes": ["a", "b", "tie", ...]}</c>.
    /// The majority side is chosen; ties are not votes. A line without a strict majority gives no pair (it counts as
    /// skipped in the report); a pair whose disagreement exceeds <paramref name="disagreementThreshold"/> is flagged, and
    /// left out when <paramref name="excludeFlagged"/>.
    /// </summary>
    public static IEnumerable<VotedPair> ReadVoted(string path, double disagreementThreshold = 0.25, bool excludeFlagged = false,
        DataReadOptions? options = null, DataReadReport? report = null)
    {
        report ??= new DataReadReport();
        foreach (VotedPair? voted in Read(path, options, report, (json, source) => ParseVoted(json, source, disagreementThreshold, report)))
            if (voted is not null && !(excludeFlagged && voted.Flagged))
                yield return voted;
    }

    /// <summary>
    /// Streams prompts for on-policy RL (PPO, GRPO, RLOO): <c>{"prompt": str}</c>, or <c>{"prompt": [messages]}</c>, of
    /// which the last user message is the prompt.
    /// </summary>
    public static IEnumerable<string> ReadPrompts(string path, DataReadOptions? options = null, DataReadReport? report = null) =>
        ReadPromptExamples(path, options, report).Select(p => p.Prompt);

    /// <summary>
    /// Streams prompts as <see cref="ReadPrompts"/> does, each with the other fields of its line (e.g. the
    /// <c>solution</c> that <see cref="Scoring.RewardFunction.Accuracy"/> compares with).
    /// </summary>
    public static IEnumerable<PromptExample> ReadPromptExamples(string path, DataReadOptions? options = null, DataReadReport? report = null) =>
        Read(path, options, report, (json, source) =>
        {
            JsonNode prompt = PreferenceData.Required(json, "prompt", source);
            string text = prompt is JsonValue
                ? PreferenceData.String(prompt, "prompt", source, allowEmpty: false)
                : PreferenceData.Messages(prompt, "prompt", source).LastOrDefault(m => m.Role == "user")?.Content
                    ?? throw new DataFormatException(source, "prompt", "has no user message.");
            var columns = json.Where(field => field.Key != "prompt").ToDictionary(field => field.Key, field => field.Value?.DeepClone());
            return new PromptExample(text, columns, source);
        });

    /// <summary>TRL's <c>unpair_preference_dataset</c>: each pair becomes a desirable chosen and an undesirable rejected example.</summary>
    public static IEnumerable<UnpairedExample> ToUnpaired(IEnumerable<PreferencePair> pairs)
    {
        foreach (PreferencePair pair in pairs)
        {
            yield return new UnpairedExample(pair.Prompt, pair.Chosen, true, pair.Source);
            yield return new UnpairedExample(pair.Prompt, pair.Rejected, false, pair.Source);
        }
    }

    static IEnumerable<T> Read<T>(string path, DataReadOptions? options, DataReadReport? report, Func<JsonObject, SourceLocation, T> parse)
    {
        options ??= new DataReadOptions();
        report ??= new DataReadReport(options.ReportedLineLimit);
        foreach (var (json, source) in JsonlReader.Read(path, options, report))
        {
            T value;
            try
            {
                value = parse(json, source);
            }
            catch (DataFormatException error) when (options.SkipBadRows)
            {
                report.AddSkipped(error);
                continue;
            }
            report.RecordsProduced++;
            yield return value;
        }
    }

    static UnpairedRecord ParseUnpaired(JsonObject json, SourceLocation source)
    {
        bool label = Label(json, source);
        if (json.ContainsKey("completion_input_ids"))
            return new PretokenizedUnpaired(json.ContainsKey("prompt_input_ids") ? PreferenceData.Ids(json, "prompt_input_ids", source, true) : [],
                PreferenceData.Ids(json, "completion_input_ids", source, false), label, source);
        var (prompt, completion) = PromptAndCompletion(json, source);
        return new UnpairedExample(prompt, completion, label, source);
    }

    static SftExample ParseSft(JsonObject json, SourceLocation source)
    {
        if (json["messages"] is { } node)
        {
            IReadOnlyList<ChatMessage> messages = PreferenceData.Messages(node, "messages", source);
            int last = messages.Count - 1;
            if (messages[last].Role != "assistant")
                throw new DataFormatException(source, "messages", "must end with an assistant message, the completion to learn.");
            return new SftExample(Content.FromMessages(messages.Take(last).ToList()), Content.FromMessages([messages[last]]), source);
        }
        if (json["text"] is { } text)
            return new SftExample(Content.FromText(""), Content.FromText(PreferenceData.String(text, "text", source, allowEmpty: false)), source);
        var (prompt, completion) = PromptAndCompletion(json, source);
        return new SftExample(prompt, completion, source);
    }

    static List<PreferencePair> ParseRated(JsonObject json, SourceLocation source, RatingPairing pairing, double gap)
    {
        JsonNode prompt = PreferenceData.Required(json, "prompt", source);
        if (PreferenceData.Required(json, "completions", source) is not JsonArray completions)
            throw new DataFormatException(source, "completions", $"expected a list, found {PreferenceData.Kind(json["completions"])}.");
        if (PreferenceData.Required(json, "ratings", source) is not JsonArray ratings)
            throw new DataFormatException(source, "ratings", $"expected a list of numbers, found {PreferenceData.Kind(json["ratings"])}.");
        if (ratings.Count != completions.Count)
            throw new DataFormatException(source, "ratings", $"has {ratings.Count} scores for {completions.Count} completions.");
        Content promptContent = prompt is JsonValue ? Content.FromText(PreferenceData.String(prompt, "prompt", source, true))
            : Content.FromMessages(PreferenceData.Messages(prompt, "prompt", source));
        var scored = new List<(Content Completion, double Score)>();
        for (int i = 0; i < completions.Count; i++)
        {
            if (ratings[i] is not JsonValue v || !v.TryGetValue(out double score) || !double.IsFinite(score))
                throw new DataFormatException(source, $"ratings[{i}]", $"expected a number, found {ratings[i]?.ToJsonString() ?? "null"}.");
            scored.Add((CompletionOf(completions[i]!, $"completions[{i}]", source, promptContent.IsConversational), score));
        }
        var pairs = new List<PreferencePair>();
        if (pairing == RatingPairing.BestVsWorst)
        {
            var best = scored.MaxBy(s => s.Score);
            var worst = scored.MinBy(s => s.Score);
            if (best.Score - worst.Score >= gap)
                pairs.Add(new PreferencePair(promptContent, best.Completion, worst.Completion, source));
            return pairs;
        }
        for (int i = 0; i < scored.Count; i++)
            for (int j = 0; j < scored.Count; j++)
                if (scored[i].Score - scored[j].Score >= gap)
                    pairs.Add(new PreferencePair(promptContent, scored[i].Completion, scored[j].Completion, source));
        return pairs;
    }

    static VotedPair? ParseVoted(JsonObject json, SourceLocation source, double threshold, DataReadReport report)
    {
        JsonNode prompt = PreferenceData.Required(json, "prompt", source);
        Content promptContent = prompt is JsonValue ? Content.FromText(PreferenceData.String(prompt, "prompt", source, true))
            : Content.FromMessages(PreferenceData.Messages(prompt, "prompt", source));
        Content a = CompletionOf(PreferenceData.Required(json, "completion_a", source), "completion_a", source, promptContent.IsConversational);
        Content b = CompletionOf(PreferenceData.Required(json, "completion_b", source), "completion_b", source, promptContent.IsConversational);
        if (PreferenceData.Required(json, "votes", source) is not JsonArray votes || votes.Count == 0)
            throw new DataFormatException(source, "votes", "expected a non-empty list of \"a\", \"b\" or \"tie\".");
        int forA = 0, forB = 0;
        for (int i = 0; i < votes.Count; i++)
        {
            string vote = PreferenceData.String(votes[i]!, $"votes[{i}]", source, allowEmpty: false);
            switch (vote)
            {
                case "a": forA++; break;
                case "b": forB++; break;
                case "tie": break;
                default: throw new DataFormatException(source, $"votes[{i}]", $"'{vote}' is not \"a\", \"b\" or \"tie\".");
            }
        }
        if (forA == forB)
        {
            report.AddSkipped(new DataFormatException(source, "votes", $"no majority ({forA} for a, {forB} for b)."));
            return null;
        }
        double agreement = (double)Math.Max(forA, forB) / (forA + forB);
        var pair = forA > forB ? new PreferencePair(promptContent, a, b, source) : new PreferencePair(promptContent, b, a, source);
        return new VotedPair(pair, agreement, 1 - agreement > threshold);
    }

    static (Content Prompt, Content Completion) PromptAndCompletion(JsonObject json, SourceLocation source)
    {
        JsonNode prompt = PreferenceData.Required(json, "prompt", source);
        JsonNode completion = PreferenceData.Required(json, "completion", source);
        if (prompt is JsonValue)
            return (Content.FromText(PreferenceData.String(prompt, "prompt", source, allowEmpty: true)),
                Content.FromText(PreferenceData.String(completion, "completion", source, allowEmpty: false)));
        return (Content.FromMessages(PreferenceData.Messages(prompt, "prompt", source)), CompletionOf(completion, "completion", source, conversational: true));
    }

    static Content CompletionOf(JsonNode node, string field, SourceLocation source, bool conversational)
    {
        if (!conversational)
            return Content.FromText(PreferenceData.String(node, field, source, allowEmpty: false));
        IReadOnlyList<ChatMessage> messages = PreferenceData.Messages(node, field, source);
        if (messages.Any(m => m.Role != "assistant") || messages.All(m => string.IsNullOrWhiteSpace(m.Content)))
            throw new DataFormatException(source, field, "a completion must be non-empty assistant messages.");
        return Content.FromMessages(messages);
    }

    static bool Label(JsonObject json, SourceLocation source) =>
        PreferenceData.Required(json, "label", source) is JsonValue v && v.TryGetValue(out bool label) ? label
            : throw new DataFormatException(source, "label", $"expected true or false, found {json["label"]!.ToJsonString()}.");
}
