using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Alignment.Evaluation;

/// <summary>
/// IFEval's verifiable instructions (Zhou et al. 2023), by their ids, each a check of a response against the
/// instruction's arguments (<c>kwargs</c>, as IFEval's prompt files give them). Words are runs of letters, digits and
/// apostrophes; sentences end at <c>.</c>, <c>!</c> or <c>?</c> followed by a space or the end; paragraphs are separated
/// by <c>***</c> lines (IFEval's convention); the response language is judged by its script (so Latin-script
/// languages other than English are not told apart — said where it matters).
/// </summary>
public static partial class InstructionChecks
{
    static readonly Dictionary<string, Func<string, JsonObject, bool>> Checks = new(StringComparer.Ordinal)
    {
        ["change_case:english_lowercase"] = (r, _) => r == r.ToLowerInvariant() && r.Any(char.IsLetter),
        ["change_case:english_capital"] = (r, _) => r == r.ToUpperInvariant() && r.Any(char.IsLetter),
        ["length_constraints:number_words"] = (r, a) => Compare(Words().Count(r), a, "num_words"),
        ["length_constraints:number_sentences"] = (r, a) => Compare(Sentences(r), a, "num_sentences"),
        ["length_constraints:number_paragraphs"] = (r, a) => Paragraphs(r) == Int(a, "num_paragraphs"),
        ["keywords:existence"] = (r, a) => Strings(a, "keywords").All(k => r.Contains(k, StringComparison.OrdinalIgnoreCase)),
        ["keywords:forbidden_words"] = (r, a) => !Strings(a, "forbidden_words").Any(w => Regex.IsMatch(r, $@"\b{Regex.Escape(w)}\b", RegexOptions.IgnoreCase)),
        ["keywords:frequency"] = (r, a) => Compare(Regex.Matches(r, $@"\b{Regex.Escape(Text(a, "keyword"))}\b", RegexOptions.IgnoreCase).Count, a, "frequency"),
        ["punctuation:no_comma"] = (r, _) => !r.Contains(','),
        ["detectable_format:json_format"] = (r, _) => IsJson(r),
        ["detectable_format:number_bullet_lists"] = (r, a) => Bullets().Count(r) == Int(a, "num_bullets"),
        ["detectable_format:title"] = (r, _) => Title().Matches(r).Any(m => m.Groups[1].Value.Trim().Length > 0),
        ["detectable_content:number_placeholders"] = (r, a) => Placeholders().Count(r) >= Int(a, "num_placeholders"),
        ["startend:end_checker"] = (r, a) => r.Trim().EndsWith(Text(a, "end_phrase").Trim(), StringComparison.OrdinalIgnoreCase),
        ["startend:start_checker"] = (r, a) => r.TrimStart().StartsWith(Text(a, "start_phrase").Trim(), StringComparison.OrdinalIgnoreCase),
        ["startend:quotation"] = (r, _) => r.Trim() is { Length: > 1 } t && t[0] == '"' && t[^1] == '"',
        ["language:response_language"] = (r, a) => Script(r) == ScriptOf(Text(a, "language")),
    };

    /// <summary>The instruction ids that can be checked.</summary>
    public static IReadOnlyCollection<string> Ids => Checks.Keys;

    /// <summary>Whether <paramref name="response"/> follows the instruction <paramref name="id"/> with its arguments.</summary>
    /// <exception cref="ArgumentException">An unknown id, or an argument missing or of the wrong type (named).</exception>
    public static bool Check(string id, string response, JsonObject? arguments = null)
    {
        ArgumentNullException.ThrowIfNull(response);
        if (!Checks.TryGetValue(id, out var check))
            throw new ArgumentException($"Unknown instruction '{id}'; known: {string.Join(", ", Checks.Keys)}.", nameof(id));
        return check(response, arguments ?? []);
    }

    /// <summary>
    /// IFEval's loose check: the strict check on the response and on its variants without the first line, the last line
    /// or both, each also with the markdown asterisks removed; any passing variant passes.
    /// </summary>
    public static bool CheckLoose(string id, string response, JsonObject? arguments = null)
    {
        string[] lines = response.Split('\n');
        string[] cut = [response, string.Join('\n', lines.Skip(1)), string.Join('\n', lines.SkipLast(1)), string.Join('\n', lines.Skip(1).SkipLast(1))];
        return cut.SelectMany(v => new[] { v, v.Replace("*", "", StringComparison.Ordinal) }).Any(v => v.Trim().Length > 0 && Check(id, v, arguments));
    }

    /// <summary>IFEval's relations: <c>at least</c> and <c>less than</c>.</summary>
    static bool Compare(int count, JsonObject arguments, string key) => Text(arguments, "relation") switch
    {
        "at least" => count >= Int(arguments, key),
        "less than" => count < Int(arguments, key),
        var other => throw new ArgumentException($"relation '{other}' is neither 'at least' nor 'less than'."),
    };

    static int Sentences(string response) => SentenceEnds().Count(response.Trim() + " ");

    /// <summary>Paragraphs between <c>***</c> lines; an empty one inside (not first or last) makes the count invalid (−1), as IFEval.</summary>
    static int Paragraphs(string response)
    {
        string[] parts = ParagraphBreak().Split(response);
        if (parts.Skip(1).SkipLast(1).Any(p => p.Trim().Length == 0))
            return -1;
        return parts.Count(p => p.Trim().Length > 0);
    }

    static bool IsJson(string response)
    {
        string text = response.Trim();
        foreach (string fence in new[] { "```json", "```Json", "```JSON", "```" })
            if (text.StartsWith(fence, StringComparison.Ordinal))
                text = text[fence.Length..];
        text = text.EndsWith("```", StringComparison.Ordinal) ? text[..^3] : text;
        try
        {
            using var document = JsonDocument.Parse(text.Trim());
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>The script most of the response's letters are written in.</summary>
    static string Script(string response) =>
        response.Where(char.IsLetter).GroupBy(ScriptOf).OrderByDescending(g => g.Count()).FirstOrDefault()?.Key ?? "none";

    static string ScriptOf(char c) => c switch
    {
        >= '\u0400' and <= '\u04FF' => "Cyrillic",
        >= '\u0370' and <= '\u03FF' => "Greek",
        >= '\u0590' and <= '\u05FF' => "Hebrew",
        >= '\u0600' and <= '\u06FF' => "Arabic",
        >= '\u0900' and <= '\u097F' => "Devanagari",
        >= '\u0E00' and <= '\u0E7F' => "Thai",
        >= '\u3040' and <= '\u30FF' => "Kana",
        >= '\uAC00' and <= '\uD7AF' => "Hangul",
        >= '\u4E00' and <= '\u9FFF' => "Han",
        _ => c < '\u0250' ? "Latin" : "other",
    };

    /// <summary>The script of an ISO 639-1 language (IFEval's codes); Japanese counts as kana, Chinese as Han.</summary>
    static string ScriptOf(string language) => language switch
    {
        "ru" or "uk" or "bg" or "sr" or "mk" or "kk" => "Cyrillic",
        "el" => "Greek",
        "he" => "Hebrew",
        "ar" or "fa" or "ur" => "Arabic",
        "hi" or "mr" or "ne" => "Devanagari",
        "th" => "Thai",
        "ja" => "Kana",
        "ko" => "Hangul",
        "zh" => "Han",
        _ => "Latin",
    };

    static string Text(JsonObject arguments, string key) =>
        arguments[key] is JsonValue value && value.TryGetValue(out string? text) ? text : throw new ArgumentException($"The instruction needs a text '{key}'.");

    static int Int(JsonObject arguments, string key) =>
        arguments[key] is JsonValue value && value.TryGetValue(out int number) ? number
        : arguments[key] is JsonValue decimalValue && decimalValue.TryGetValue(out double d) && d == Math.Floor(d) ? (int)d
        : throw new ArgumentException($"The instruction needs a whole number '{key}'.");

    static IEnumerable<string> Strings(JsonObject arguments, string key) =>
        arguments[key] is JsonArray array ? array.Select(v => (string)v!) : throw new ArgumentException($"The instruction needs a list '{key}'.");

    [GeneratedRegex(@"[\p{L}\p{N}']+")]
    private static partial Regex Words();

    [GeneratedRegex(@"[^.!?\s][^.!?]*[.!?]+(?=\s)")]
    private static partial Regex SentenceEnds();

    [GeneratedRegex(@"\s?\*\*\*\s?")]
    private static partial Regex ParagraphBreak();

    [GeneratedRegex(@"^\s*[\*\-]\s", RegexOptions.Multiline)]
    private static partial Regex Bullets();

    [GeneratedRegex(@"<<([^\n]+?)>>")]
    private static partial Regex Title();

    [GeneratedRegex(@"\[.*?\]")]
    private static partial Regex Placeholders();
}
