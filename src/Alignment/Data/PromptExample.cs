using System.Text.Json.Nodes;

namespace Alignment.Data;

/// <summary>
/// A prompt for on-policy RL with the other fields of its dataset line (TRL passes them to reward functions as
/// keyword arguments, e.g. <c>solution</c>).
/// </summary>
/// <param name="Prompt">The prompt's text (sent as a user turn when there is a chat template).</param>
/// <param name="Columns">Every other field of the line, detached from the parsed document.</param>
/// <param name="Source">Where it was read, when from a file.</param>
public sealed record PromptExample(string Prompt, IReadOnlyDictionary<string, JsonNode?> Columns, SourceLocation? Source = null)
{
    static readonly IReadOnlyDictionary<string, JsonNode?> NoColumns = new Dictionary<string, JsonNode?>();

    /// <summary>A prompt without other columns.</summary>
    /// <param name="prompt">The prompt's text.</param>
    public PromptExample(string prompt) : this(prompt, NoColumns) { }

    /// <summary>A prompt with columns of plain values, e.g. <c>new("2+2?", ("solution", "4"))</c>.</summary>
    /// <param name="prompt">The prompt's text.</param>
    /// <param name="columns">Names and values (strings, numbers, booleans; null for JSON null).</param>
    public PromptExample(string prompt, params (string Name, object? Value)[] columns)
        : this(prompt, columns.ToDictionary(c => c.Name, c => c.Value is null ? null : JsonValue.Create(c.Value) as JsonNode)) { }
}
