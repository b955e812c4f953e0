using Alignment.Data;
using Alignment.Models;
using Alignment.Training;

namespace Alignment.Cli;

/// <summary>Where a command writes, reads, and what cancels it.</summary>
internal sealed record CliContext(TextWriter Output, TextWriter Error, TextReader Input, CancellationToken Cancel)
{
    /// <summary>The callbacks every training command reports to.</summary>
    public IReadOnlyList<ITrainingCallback> Callbacks => [new ConsoleProgress(Output)];

    /// <summary>Saves the trained model and prints what the run read and did.</summary>
    public int Finish(LlamaForCausalLM model, TrainingResult result, string folder, TokenizationReport report, string unit)
    {
        model.SavePretrained(folder);
        Output.WriteLine();
        Output.WriteLine($"{report.Describe(unit)}. {result.Steps}/{result.TotalSteps} steps{(result.StoppedEarly ? " (stopped early)" : "")}; " +
                         $"model saved to {folder}, metrics in {Path.Combine(folder, "metrics.jsonl")}.");
        return 0;
    }
}
