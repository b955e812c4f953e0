using System.Reflection;
using System.Text.Json.Nodes;
using Alignment.Data;

namespace Alignment.Evaluation;

/// <summary>A prompt with verifiable instructions (IFEval's format: <c>{"key", "prompt", "instruction_id_list", "kwargs"}</c>).</summary>
/// <param name="Key">Its id.</param>
/// <param name="Prompt">The prompt.</param>
/// <param name="Instructions">Each instruction's id and arguments.</param>
public sealed record InstructionPrompt(string Key, string Prompt, IReadOnlyList<(string Id, JsonObject Arguments)> Instructions);

/// <summary>Instruction-following accuracy (IFEval's four figures) and each instruction's strict accuracy.</summary>
/// <param name="PromptStrict">Share of prompts whose every instruction passes strictly.</param>
/// <param name="PromptLoose">Share of prompts whose every instruction passes loosely.</param>
/// <param name="InstructionStrict">Share of instructions that pass strictly.</param>
/// <param name="InstructionLoose">Share of instructions that pass loosely.</param>
/// <param name="ByInstruction">Strict accuracy per instruction id.</param>
public sealed record InstructionFollowingReport(double PromptStrict, double PromptLoose, double InstructionStrict, double InstructionLoose,
    IReadOnlyDictionary<string, double> ByInstruction);

/// <summary>IFEval's evaluation: responses to prompts with verifiable instructions, checked by <see cref="InstructionChecks"/>.</summary>
public static class InstructionFollowing
{
    /// <summary>The prompt set that ships with the library (written for it, in IFEval's format): 24 prompts, each instruction id at least once.</summary>
    public static IReadOnlyList<InstructionPrompt> BuiltInPrompts { get; } = ReadBuiltIn();

    /// <summary>Reads an IFEval-format JSONL file.</summary>
    /// <exception cref="DataFormatException">A line without its fields, or with an unknown instruction (file, line and field named).</exception>
    public static List<InstructionPrompt> Read(string path) => [.. Parse(File.ReadLines(path), path)];

    /// <summary>Checks each response (in the order of <paramref name="prompts"/>) against its prompt's instructions.</summary>
    /// <exception cref="ArgumentException">The counts differ.</exception>
    public static InstructionFollowingReport Evaluate(IReadOnlyList<InstructionPrompt> prompts, IReadOnlyList<string> responses)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(responses);
        if (prompts.Count != responses.Count || prompts.Count == 0)
            throw new ArgumentException($"{responses.Count} responses for {prompts.Count} prompts.", nameof(responses));
        var strict = prompts.Select((p, i) => p.Instructions.Select(x => InstructionChecks.Check(x.Id, responses[i], x.Arguments)).ToList()).ToList();
        var loose = prompts.Select((p, i) => p.Instructions.Select(x => InstructionChecks.CheckLoose(x.Id, responses[i], x.Arguments)).ToList()).ToList();
        var byInstruction = prompts.SelectMany((p, i) => p.Instructions.Select((x, j) => (x.Id, Pass: strict[i][j])))
            .GroupBy(x => x.Id).ToDictionary(g => g.Key, g => g.Average(x => x.Pass ? 1.0 : 0.0));
        return new InstructionFollowingReport(
            strict.Average(p => p.All(x => x) ? 1.0 : 0.0), loose.Average(p => p.All(x => x) ? 1.0 : 0.0),
            strict.SelectMany(p => p).Average(x => x ? 1.0 : 0.0), loose.SelectMany(p => p).Average(x => x ? 1.0 : 0.0), byInstruction);
    }

    static IEnumerable<InstructionPrompt> Parse(IEnumerable<string> lines, string path)
    {
        long number = 0;
        foreach (string line in lines)
        {
            number++;
            if (line.Trim().Length == 0)
                continue;
            var source = new SourceLocation(path, number);
            JsonObject json = JsonNode.Parse(line) as JsonObject ?? throw new DataFormatException(source, null, "is not a JSON object.");
            string prompt = (string?)json["prompt"] ?? throw new DataFormatException(source, "prompt", "is missing.");
            var ids = (json["instruction_id_list"] as JsonArray ?? throw new DataFormatException(source, "instruction_id_list", "is missing.")).Select(v => (string)v!).ToList();
            var arguments = json["kwargs"] as JsonArray ?? [];
            foreach (string id in ids.Where(id => !InstructionChecks.Ids.Contains(id)))
                throw new DataFormatException(source, "instruction_id_list", $"'{id}' is not an instruction this library checks.");
            yield return new InstructionPrompt(json["key"]?.ToString() ?? $"{number}", prompt,
                [.. ids.Select((id, i) => (id, (arguments.ElementAtOrDefault(i) as JsonObject)?.DeepClone().AsObject() ?? new JsonObject()))]);
        }
    }

    static List<InstructionPrompt> ReadBuiltIn()
    {
        using Stream stream = typeof(InstructionFollowing).Assembly.GetManifestResourceStream("Alignment.Evaluation.ifeval-prompts.jsonl")
            ?? throw new InvalidOperationException("The built-in instruction prompts are missing from the assembly.");
        using var reader = new StreamReader(stream);
        return [.. Parse(reader.ReadToEnd().Split('\n'), "ifeval-prompts.jsonl (built in)")];
    }
}
