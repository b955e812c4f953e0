using System.Text.Json;
using System.Text.Json.Nodes;

namespace Alignment.Data;

/// <summary>A human's answer to one pair.</summary>
public enum HumanChoice
{
    /// <summary>The completion shown on the left is better.</summary>
    Left,

    /// <summary>The completion shown on the right is better.</summary>
    Right,

    /// <summary>Neither is better.</summary>
    Tie,

    /// <summary>Not answered (for example, not qualified to judge).</summary>
    Skip,
}

/// <summary>One pair to show: the prompt, and the two completions in the order they are shown.</summary>
public sealed record AnnotationItem(long SourceLine, string Prompt, string Left, string Right)
{
    /// <summary>Whether the input's second completion is shown on the left.</summary>
    public bool Swapped { get; init; }
}

/// <summary>
/// Human annotation of pairs, resumable. Input lines are <c>{"prompt", "completion_a", "completion_b"}</c> (or
/// <c>{"prompt", "chosen", "rejected"}</c> to re-check existing labels); each is shown with its two completions in a
/// seeded random left/right order so that position does not leak the label. Decisions are appended to the output as
/// pairwise JSONL (<c>{"prompt", "chosen", "rejected", "source_line"}</c>, readable by <see cref="PreferenceData.ReadPairs"/>);
/// ties and skips go to <c>OUTPUT.undecided.jsonl</c>. Every answer is flushed at once; reopening the session continues
/// after the last answered line.
/// </summary>
public sealed class AnnotationSession
{
    readonly string _input;
    readonly int _seed;

    /// <summary>A session over <paramref name="inputPath"/> writing to <paramref name="outputPath"/>.</summary>
    public AnnotationSession(string inputPath, string outputPath, int seed = 0)
    {
        _input = inputPath;
        OutputPath = outputPath;
        _seed = seed;
    }

    /// <summary>The pairwise output file.</summary>
    public string OutputPath { get; }

    /// <summary>Where ties and skips are recorded.</summary>
    public string UndecidedPath => OutputPath + ".undecided.jsonl";

    /// <summary>The input lines already answered (in either output file).</summary>
    public HashSet<long> Answered()
    {
        var answered = new HashSet<long>();
        foreach (string path in new[] { OutputPath, UndecidedPath }.Where(File.Exists))
            foreach (string line in File.ReadLines(path))
                if (!string.IsNullOrWhiteSpace(line) && JsonNode.Parse(line)?["source_line"] is JsonValue v && v.TryGetValue(out long number))
                    answered.Add(number);
        return answered;
    }

    /// <summary>The pairs still to answer, in file order.</summary>
    /// <exception cref="DataFormatException">An input line fits neither format.</exception>
    public IEnumerable<AnnotationItem> Pending()
    {
        HashSet<long> answered = Answered();
        foreach (var (json, source) in JsonlReader.Read(_input))
        {
            if (answered.Contains(source.Line))
                continue;
            string prompt = PreferenceData.String(PreferenceData.Required(json, "prompt", source), "prompt", source, allowEmpty: true);
            bool labelled = json.ContainsKey("chosen");
            string a = PreferenceData.String(PreferenceData.Required(json, labelled ? "chosen" : "completion_a", source), labelled ? "chosen" : "completion_a", source, false);
            string b = PreferenceData.String(PreferenceData.Required(json, labelled ? "rejected" : "completion_b", source), labelled ? "rejected" : "completion_b", source, false);
            // A seeded System.Random is stable across processes (HashCode.Combine is randomised per process).
            bool swap = new Random(unchecked(_seed * 1_000_003 + (int)source.Line)).Next(2) == 1;
            yield return swap ? new AnnotationItem(source.Line, prompt, b, a) { Swapped = true } : new AnnotationItem(source.Line, prompt, a, b);
        }
    }

    /// <summary>Records an answer (appended and flushed immediately).</summary>
    public void Record(AnnotationItem item, HumanChoice choice)
    {
        ArgumentNullException.ThrowIfNull(item);
        JsonObject line;
        string path;
        if (choice is HumanChoice.Left or HumanChoice.Right)
        {
            var (chosen, rejected) = choice == HumanChoice.Left ? (item.Left, item.Right) : (item.Right, item.Left);
            line = new JsonObject { ["prompt"] = item.Prompt, ["chosen"] = chosen, ["rejected"] = rejected, ["source_line"] = item.SourceLine };
            path = OutputPath;
        }
        else
        {
            var (first, second) = item.Swapped ? (item.Right, item.Left) : (item.Left, item.Right); // as they were in the input
            line = new JsonObject { ["prompt"] = item.Prompt, ["completion_a"] = first, ["completion_b"] = second,
                ["choice"] = choice == HumanChoice.Tie ? "tie" : "skip", ["source_line"] = item.SourceLine };
            path = UndecidedPath;
        }
        using var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read);
        using var writer = new StreamWriter(stream);
        writer.WriteLine(line.ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
        writer.Flush();
        stream.Flush(flushToDisk: true);
    }
}
