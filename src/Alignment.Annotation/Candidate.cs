using System.Text.Json.Nodes;

namespace Alignment.Annotation;

/// <summary>
/// One item to label: a prompt (text or messages) and its completions (text or assistant messages) as they were in
/// the input line, kept as JSON so that the export writes them back in the same format.
/// </summary>
/// <param name="Id">1-based item number in the store.</param>
/// <param name="Line">The input line it came from.</param>
/// <param name="Prompt">A string or a list of messages.</param>
/// <param name="Completions">Two for pairwise items (A, B); two or more for rating items.</param>
public sealed record Candidate(long Id, long Line, JsonNode Prompt, IReadOnlyList<JsonNode> Completions)
{
    /// <summary>The prompt as a rater reads it: the text, or each message as "role: content".</summary>
    public string PromptText => Text(Prompt);

    /// <summary>Completion <paramref name="index"/> as a rater reads it.</summary>
    public string CompletionText(int index) => Text(Completions[index]);

    static string Text(JsonNode node) => node is JsonArray messages
        ? string.Join("\n\n", messages.Select(m => $"{m!["role"]!.GetValue<string>()}: {m["content"]!.GetValue<string>()}"))
        : node.GetValue<string>();
}
