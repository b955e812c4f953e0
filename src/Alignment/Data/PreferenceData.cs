using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Alignment.Tokenization;

namespace Alignment.Data;

/// <summary>Text (TRL's standard format) or messages (TRL's conversational format).</summary>
public sealed record Content
{
    Content(string? text, IReadOnlyList<ChatMessage>? messages)
    {
        Text = text;
        Messages = messages;
    }

    /// <summary>The text, in the standard format.</summary>
    public string? Text { get; }

    /// <summary>The messages, in the conversational format.</summary>
    public IReadOnlyList<ChatMessage>? Messages { get; }

    /// <summary>Whether this is a list of messages.</summary>
    public bool IsConversational => Messages is not null;

    /// <summary>Plain text.</summary>
    public static Content FromText(string text) => new(text ?? throw new ArgumentNullException(nameof(text)), null);

    /// <summary>A list of messages.</summary>
    public static Content FromMessages(IReadOnlyList<ChatMessage> messages) => new(null, messages ?? throw new ArgumentNullException(nameof(messages)));

    /// <summary>A canonical string of the content, for equality and duplicate checks.</summary>
    public string Key() => Text is not null ? "T:" + Text : "M:" + string.Join("\u0001", Messages!.Select(m => m.Role + "\u0002" + m.Content));
}

/// <summary>A record of paired preference data.</summary>
/// <param name="Source">Where it was read.</param>
public abstract record PreferenceRecord(SourceLocation Source);

/// <summary>A prompt with a chosen and a rejected completion, as text or messages.</summary>
public sealed record PreferencePair(Content Prompt, Content Chosen, Content Rejected, SourceLocation Source) : PreferenceRecord(Source)
{
    /// <summary>The data's optional <c>margin</c> (how much better chosen is; used by reward modelling), or null.</summary>
    public double? Margin { get; init; }
}

/// <summary>A pair given as token ids (<c>prompt_input_ids</c>, <c>chosen_input_ids</c>, <c>rejected_input_ids</c>), used as-is.</summary>
public sealed record PretokenizedPair(int[] Prompt, int[] Chosen, int[] Rejected, SourceLocation Source) : PreferenceRecord(Source);

/// <summary>Readers for paired preference data in every common JSONL shape.</summary>
/// <remarks>
/// <para>Each line is one of:</para>
/// <list type="bullet">
/// <item>standard: <c>{"prompt": str, "chosen": str, "rejected": str}</c>;</item>
/// <item>conversational: <c>"prompt"</c> a list of <c>{"role","content"}</c> messages, <c>"chosen"</c>/<c>"rejected"</c> lists of assistant messages;</item>
/// <item>implicit prompt: no <c>"prompt"</c>; <c>"chosen"</c> and <c>"rejected"</c> are whole conversations (or strings) sharing a prefix, which becomes the prompt (as TRL's <c>extract_prompt</c>);</item>
/// <item>pre-tokenized: <c>prompt_input_ids</c>, <c>chosen_input_ids</c>, <c>rejected_input_ids</c> integer lists;</item>
/// <item>multi-turn parallel lists (SimpleLLaMA's DPO stage): <c>{"Template": [system or "CUSTOM"], "User": [...], "Accepted": [...], "Rejected": [...]}</c>
/// of equal length. Index i gives one pair: the prompt is the system message (none for <c>"CUSTOM"</c>), then every earlier
/// exchange as User[j] → Accepted[j], then User[i]; chosen is Accepted[i], rejected Rejected[i].</item>
/// </list>
/// </remarks>
public static class PreferenceData
{
    /// <summary>Streams the pairs of a JSONL file.</summary>
    /// <param name="path">The file.</param>
    /// <param name="options">Whether to skip bad lines (reported) instead of stopping at the first.</param>
    /// <param name="report">Filled while reading: counts, skipped lines, duplicates, chosen == rejected.</param>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="DataFormatException">A bad line, naming file, line and field (unless skipped).</exception>
    public static IEnumerable<PreferenceRecord> ReadPairs(string path, DataReadOptions? options = null, DataReadReport? report = null)
    {
        options ??= new DataReadOptions();
        report ??= new DataReadReport(options.ReportedLineLimit);
        var seen = new HashSet<UInt128>();
        foreach (var (json, source) in JsonlReader.Read(path, options, report))
        {
            List<PreferenceRecord> records;
            try
            {
                records = ParsePairs(json, source);
            }
            catch (DataFormatException error) when (options.SkipBadRows)
            {
                report.AddSkipped(error);
                continue;
            }
            foreach (PreferenceRecord record in records)
            {
                string key = KeyOf(record);
                if (!seen.Add(Hash(key)))
                    report.AddDuplicate(source);
                if (record is PreferencePair pair && pair.Chosen.Key() == pair.Rejected.Key()
                    || record is PretokenizedPair ids && ids.Chosen.AsSpan().SequenceEqual(ids.Rejected))
                    report.AddChosenEqualsRejected(source);
                report.RecordsProduced++;
                yield return record;
            }
        }
    }

    /// <summary>The pairs one JSON line describes.</summary>
    /// <exception cref="DataFormatException">The line fits no paired format.</exception>
    public static List<PreferenceRecord> ParsePairs(JsonObject json, SourceLocation source)
    {
        if (json.ContainsKey("chosen_input_ids") || json.ContainsKey("rejected_input_ids"))
            return [new PretokenizedPair(
                json.ContainsKey("prompt_input_ids") ? Ids(json, "prompt_input_ids", source, allowEmpty: true) : [],
                Ids(json, "chosen_input_ids", source, allowEmpty: false),
                Ids(json, "rejected_input_ids", source, allowEmpty: false), source)];
        if (json.ContainsKey("User") || json.ContainsKey("Accepted"))
            return MultiTurn(json, source);
        JsonNode chosen = Required(json, "chosen", source), rejected = Required(json, "rejected", source);
        JsonNode? prompt = json["prompt"];
        if (prompt is null)
            return [Implicit(chosen, rejected, source)];
        double? margin = json["margin"] switch
        {
            null => null,
            JsonValue v when v.TryGetValue(out double m) && double.IsFinite(m) => m,
            var other => throw new DataFormatException(source, "margin", $"expected a number, found {Kind(other)}."),
        };
        if (prompt is JsonValue)
            return [new PreferencePair(Content.FromText(String(prompt, "prompt", source, allowEmpty: true)),
                Content.FromText(String(chosen, "chosen", source, allowEmpty: false)),
                Content.FromText(String(rejected, "rejected", source, allowEmpty: false)), source) { Margin = margin }];
        return [new PreferencePair(
            Content.FromMessages(Messages(prompt, "prompt", source)),
            Content.FromMessages(Completion(chosen, "chosen", source)),
            Content.FromMessages(Completion(rejected, "rejected", source)), source) { Margin = margin }];
    }

    static PreferencePair Implicit(JsonNode chosen, JsonNode rejected, SourceLocation source)
    {
        if (chosen is JsonValue && rejected is JsonValue)
        {
            string c = String(chosen, "chosen", source, allowEmpty: false), r = String(rejected, "rejected", source, allowEmpty: false);
            int shared = 0;
            while (shared < Math.Min(c.Length, r.Length) && c[shared] == r[shared])
                shared++;
            if (shared > 0 && shared < c.Length && shared < r.Length && c[shared - 1] == ' ')
                shared--; // the completions keep their leading space, as TRL does
            if (shared == 0)
                throw new DataFormatException(source, "prompt", "missing, and \"chosen\" and \"rejected\" share no prefix to take it from.");
            return new PreferencePair(Content.FromText(c[..shared]), Content.FromText(Nonempty(c[shared..], "chosen", source)),
                Content.FromText(Nonempty(r[shared..], "rejected", source)), source);
        }
        IReadOnlyList<ChatMessage> cm = Messages(chosen, "chosen", source), rm = Messages(rejected, "rejected", source);
        int common = 0;
        while (common < Math.Min(cm.Count, rm.Count) && cm[common] == rm[common])
            common++;
        if (common == 0)
            throw new DataFormatException(source, "prompt", "missing, and the \"chosen\" and \"rejected\" conversations share no leading message.");
        if (common == cm.Count || common == rm.Count)
            throw new DataFormatException(source, common == cm.Count ? "chosen" : "rejected", "has nothing after the messages it shares with the other completion.");
        return new PreferencePair(Content.FromMessages(cm.Take(common).ToList()), Content.FromMessages(cm.Skip(common).ToList()),
            Content.FromMessages(rm.Skip(common).ToList()), source);
    }

    static List<PreferenceRecord> MultiTurn(JsonObject json, SourceLocation source)
    {
        string[] users = StringList(json, "User", source), accepted = StringList(json, "Accepted", source), rejected = StringList(json, "Rejected", source);
        if (users.Length == 0)
            throw new DataFormatException(source, "User", "is empty.");
        if (accepted.Length != users.Length || rejected.Length != users.Length)
            throw new DataFormatException(source, accepted.Length != users.Length ? "Accepted" : "Rejected",
                $"has {(accepted.Length != users.Length ? accepted.Length : rejected.Length)} entries but \"User\" has {users.Length}; the lists must have equal length.");
        string? system = null;
        if (json["Template"] is { } template)
        {
            string[] templates = StringList(json, "Template", source);
            if (templates.Length != 1)
                throw new DataFormatException(source, "Template", $"must hold one system prompt (or \"CUSTOM\"), has {templates.Length}.");
            system = templates[0] == "CUSTOM" || templates[0].Length == 0 ? null : templates[0];
        }
        var pairs = new List<PreferenceRecord>();
        var history = new List<ChatMessage>();
        if (system is not null)
            history.Add(new ChatMessage("system", system));
        for (int i = 0; i < users.Length; i++)
        {
            history.Add(new ChatMessage("user", Nonempty(users[i], $"User[{i}]", source)));
            pairs.Add(new PreferencePair(Content.FromMessages(history.ToList()),
                Content.FromMessages([new ChatMessage("assistant", Nonempty(accepted[i], $"Accepted[{i}]", source))]),
                Content.FromMessages([new ChatMessage("assistant", Nonempty(rejected[i], $"Rejected[{i}]", source))]), source));
            history.Add(new ChatMessage("assistant", accepted[i]));
        }
        return pairs;
    }

    internal static JsonNode Required(JsonObject json, string field, SourceLocation source) =>
        json[field] ?? throw new DataFormatException(source, field, "is missing.");

    internal static string String(JsonNode node, string field, SourceLocation source, bool allowEmpty)
    {
        if (node is not JsonValue value || !value.TryGetValue(out string? text))
            throw new DataFormatException(source, field, $"expected a string, found {Kind(node)}.");
        return allowEmpty ? text : Nonempty(text, field, source);
    }

    internal static string Nonempty(string text, string field, SourceLocation source) =>
        string.IsNullOrWhiteSpace(text) ? throw new DataFormatException(source, field, "is empty.") : text;

    internal static IReadOnlyList<ChatMessage> Messages(JsonNode node, string field, SourceLocation source)
    {
        if (node is not JsonArray array)
            throw new DataFormatException(source, field, $"expected a string or a list of messages, found {Kind(node)}.");
        var messages = new List<ChatMessage>(array.Count);
        for (int i = 0; i < array.Count; i++)
        {
            if (array[i] is not JsonObject message)
                throw new DataFormatException(source, $"{field}[{i}]", $"expected a {{\"role\", \"content\"}} object, found {Kind(array[i])}.");
            string role = String(Required(message, "role", source), $"{field}[{i}].role", source, allowEmpty: false);
            if (role is not ("system" or "user" or "assistant"))
                throw new DataFormatException(source, $"{field}[{i}].role", $"'{role}' is not one of system, user, assistant.");
            messages.Add(new ChatMessage(role, String(Required(message, "content", source), $"{field}[{i}].content", source, allowEmpty: true)));
        }
        if (messages.Count == 0)
            throw new DataFormatException(source, field, "is an empty list.");
        return messages;
    }

    static IReadOnlyList<ChatMessage> Completion(JsonNode node, string field, SourceLocation source)
    {
        IReadOnlyList<ChatMessage> messages = Messages(node, field, source);
        if (messages.Any(m => m.Role != "assistant"))
            throw new DataFormatException(source, field, "a completion must consist of assistant messages.");
        if (messages.All(m => string.IsNullOrWhiteSpace(m.Content)))
            throw new DataFormatException(source, field, "is empty.");
        return messages;
    }

    static string[] StringList(JsonObject json, string field, SourceLocation source)
    {
        if (Required(json, field, source) is not JsonArray array)
            throw new DataFormatException(source, field, $"expected a list of strings, found {Kind(json[field])}.");
        return array.Select((n, i) => String(n ?? JsonValue.Create(0)!, $"{field}[{i}]", source, allowEmpty: true)).ToArray();
    }

    internal static int[] Ids(JsonObject json, string field, SourceLocation source, bool allowEmpty)
    {
        if (Required(json, field, source) is not JsonArray array)
            throw new DataFormatException(source, field, $"expected a list of token ids, found {Kind(json[field])}.");
        var ids = new int[array.Count];
        for (int i = 0; i < ids.Length; i++)
        {
            if (array[i] is not JsonValue v || !v.TryGetValue(out int id) || id < 0)
                throw new DataFormatException(source, $"{field}[{i}]", $"expected a non-negative integer token id, found {array[i]?.ToJsonString() ?? "null"}.");
            ids[i] = id;
        }
        if (ids.Length == 0 && !allowEmpty)
            throw new DataFormatException(source, field, "is empty.");
        return ids;
    }

    internal static string Kind(JsonNode? node) => node switch
    {
        null => "null",
        JsonArray => "a list",
        JsonObject => "an object",
        JsonValue v when v.TryGetValue(out string? _) => "a string",
        JsonValue v when v.TryGetValue(out bool _) => "a boolean",
        _ => "a number",
    };

    static string KeyOf(PreferenceRecord record) => record switch
    {
        PreferencePair p => p.Prompt.Key() + "\u0003" + p.Chosen.Key() + "\u0003" + p.Rejected.Key(),
        PretokenizedPair t => string.Join(",", t.Prompt) + "|" + string.Join(",", t.Chosen) + "|" + string.Join(",", t.Rejected),
        _ => throw new InvalidOperationException(),
    };

    static UInt128 Hash(string key)
    {
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(key), digest);
        return new UInt128(BitConverter.ToUInt64(digest), BitConverter.ToUInt64(digest[8..]));
    }
}
