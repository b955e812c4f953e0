using System.Text.Json;
using System.Text.Json.Nodes;
using Alignment.Data;

namespace Alignment.Annotation;

/// <summary>
/// Reads the items to label from JSONL: <c>{"prompt", "completion_a", "completion_b"}</c>, or
/// <c>{"prompt", "completions": [...]}</c> — in pairwise mode every pair of those completions becomes an item (as
/// <c>PreferenceCollector</c>'s all-pairs), in rating mode the line is one item. Prompts are strings or message lists,
/// completions strings or assistant-message lists. Every problem is refused with its file:line and field.
/// </summary>
public static class CandidateReader
{
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="DataFormatException">A malformed line; the message names the file, line and field.</exception>
    public static IReadOnlyList<Candidate> Read(string path, AnnotationMode mode)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"No candidates file at '{path}'.", path);
        var items = new List<Candidate>();
        long line = 0;
        foreach (string text in File.ReadLines(path))
        {
            line++;
            if (string.IsNullOrWhiteSpace(text))
                continue;
            var source = new SourceLocation(path, line);
            JsonObject json;
            try
            {
                json = JsonNode.Parse(text) as JsonObject ?? throw new DataFormatException(source, null, "expected a JSON object.");
            }
            catch (JsonException e)
            {
                throw new DataFormatException(source, null, $"is not valid JSON: {e.Message}", e);
            }
            JsonNode prompt = PreferenceData.Required(json, "prompt", source);
            bool conversational = prompt is JsonArray;
            if (conversational)
                PreferenceData.Messages(prompt, "prompt", source);
            else
                PreferenceData.String(prompt, "prompt", source, allowEmpty: false);
            List<JsonNode> completions = Completions(json, source, conversational);
            if (mode == AnnotationMode.Rating)
                items.Add(new Candidate(items.Count + 1, line, prompt.DeepClone(), completions));
            else
                for (int i = 0; i < completions.Count; i++)
                    for (int j = i + 1; j < completions.Count; j++)
                        items.Add(new Candidate(items.Count + 1, line, prompt.DeepClone(), [completions[i].DeepClone(), completions[j].DeepClone()]));
        }
        if (items.Count == 0)
            throw new DataFormatException(new SourceLocation(path, line), null, "the file holds no items.");
        return items;
    }

    static List<JsonNode> Completions(JsonObject json, SourceLocation source, bool conversational)
    {
        var named = new List<(JsonNode Node, string Field)>();
        if (json["completions"] is { } list)
        {
            if (list is not JsonArray array || array.Count < 2)
                throw new DataFormatException(source, "completions", "expected a list of two or more completions.");
            named.AddRange(array.Select((node, i) => (node ?? throw new DataFormatException(source, $"completions[{i}]", "is null."), $"completions[{i}]")));
        }
        else
            named.AddRange(new[] { "completion_a", "completion_b" }.Select(field => (PreferenceData.Required(json, field, source), field)));
        foreach (var (node, field) in named)
        {
            if (conversational != node is JsonArray)
                throw new DataFormatException(source, field, conversational
                    ? "the prompt is a conversation, so each completion must be a list of assistant messages."
                    : "the prompt is text, so each completion must be a string.");
            if (node is JsonArray)
            {
                if (PreferenceData.Messages(node, field, source).Any(m => m.Role != "assistant"))
                    throw new DataFormatException(source, field, "a completion must consist of assistant messages.");
            }
            else
                PreferenceData.String(node, field, source, allowEmpty: false);
        }
        return named.Select(n => n.Node).ToList();
    }
}
