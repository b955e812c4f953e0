using System.Text.Json;
using System.Text.Json.Nodes;

namespace Alignment.Scoring;

/// <summary>What a reward function sees of one completion: TRL's <c>prompts</c>, <c>completions</c>, <c>completion_ids</c> and the dataset's other columns.</summary>
/// <param name="Prompt">The prompt's text (the user turn, before any chat template).</param>
/// <param name="Completion">The completion's text, special tokens removed.</param>
/// <param name="CompletionIds">The completion's token ids, its EOS included when it ended with one.</param>
/// <param name="Columns">Every other field of the prompt's dataset line, e.g. <c>solution</c>; empty when the prompts carry none.</param>
public sealed record RewardSample(string Prompt, string Completion, IReadOnlyList<int> CompletionIds, IReadOnlyDictionary<string, JsonNode?> Columns)
{
    /// <summary>
    /// The column <paramref name="name"/> as text: a string as it is, a number or boolean as written in the JSON, an
    /// array or object as JSON; null when the line has no such field or it is null.
    /// </summary>
    /// <param name="name">The field's name.</param>
    public string? Column(string name) =>
        Columns.TryGetValue(name, out JsonNode? node) ? Text(node) : null;

    internal static string? Text(JsonNode? node) => node switch
    {
        null => null,
        JsonValue value when value.GetValueKind() == JsonValueKind.String => value.GetValue<string>(),
        _ => node.ToJsonString(),
    };
}
