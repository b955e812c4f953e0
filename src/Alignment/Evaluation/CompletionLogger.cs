using System.Text.Json;
using System.Text.Json.Nodes;
using Alignment.Scoring;
using Alignment.Training;
using Microsoft.Extensions.Logging;

namespace Alignment.Evaluation;

/// <summary>
/// TRL's <c>LogCompletionsCallback</c>: at every evaluation point, generates a completion for each of a fixed set of
/// prompts and appends them, with the step, to a JSONL file (<c>{"step", "prompt", "completion"}</c>), logging the
/// first; reports <c>eval_completions/mean_length</c> (characters).
/// </summary>
/// <param name="generator">The model being trained, as a generator (seed its sampling, or sample greedily, to compare steps).</param>
/// <param name="prompts">The prompts.</param>
/// <param name="path">The JSONL file (e.g. the run's <c>completions.jsonl</c>); appended to.</param>
/// <param name="logger">Where the first completion of each evaluation is logged.</param>
public sealed partial class CompletionLogger(ICompletionGenerator generator, IReadOnlyList<string> prompts, string path, ILogger? logger = null) : IEvaluationCallback
{
    readonly IReadOnlyList<string> _prompts = prompts is { Count: > 0 } ? prompts : throw new ArgumentException("No prompts.", nameof(prompts));

    /// <inheritdoc />
    public void OnLog(TrainingProgress progress)
    {
    }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, double> Evaluate(int step)
    {
        IReadOnlyList<string> completions = generator.GenerateEachAsync(_prompts).GetAwaiter().GetResult();
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var options = new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        File.AppendAllLines(path, completions.Select((completion, i) => new JsonObject { ["step"] = step, ["prompt"] = _prompts[i], ["completion"] = completion }.ToJsonString(options)));
        if (logger is not null)
            LogCompletion(logger, step, _prompts[0], completions[0]);
        return new Dictionary<string, double> { ["completions/mean_length"] = completions.Average(c => c.Length) };
    }

    [LoggerMessage(EventId = 6012, Level = LogLevel.Information, Message = "step {Step}: {Prompt} → {Completion}")]
    static partial void LogCompletion(ILogger logger, int step, string prompt, string completion);
}
