namespace Alignment.Cli;

/// <summary>Where a command writes, reads, and what cancels it.</summary>
internal sealed record CliContext(TextWriter Output, TextWriter Error, TextReader Input, CancellationToken Cancel)
{
    /// <summary>Where the library's warnings go: standard error.</summary>
    public Microsoft.Extensions.Logging.ILogger Logger => new WarningLogger(Output, Error);

    /// <summary>The callbacks every training command reports to.</summary>
    public IReadOnlyList<ITrainingCallback> Callbacks => [new ConsoleProgress(Output)];

    /// <summary>Prints, before training, what reading each data file found (skipped rows, duplicates, chosen == rejected).</summary>
    public void Report(Arguments.DataSource source)
    {
        foreach (var (path, report) in source.ReadReports)
            Output.WriteLine($"{path}: {report.ToString().Replace(Environment.NewLine, Environment.NewLine + "  ", StringComparison.Ordinal)}");
    }

        /// <summary>Saves the trained model and prints what the run read and did.</summary>
    /// <param name="model">The trained model.</param>
    /// <param name="result">How training ended.</param>
    /// <param name="folder">Where the model goes.</param>
    /// <param name="unit">What the data rows are: "pairs" or "examples".</param>
    /// <param name="train">What tokenization did to the training data.</param>
    /// <param name="eval">What it did to the evaluation data, if any.</param>
    public int Finish(LlamaForCausalLM model, TrainingResult result, string folder, string unit, TokenizationReport train, TokenizationReport? eval)
    {
        model.SavePretrained(folder);
        return Summary(result, folder, unit, train, eval);
    }

    /// <summary>Prints what the run read and did; <paramref name="folder"/> holds the saved model and metrics.jsonl.</summary>
    public int Summary(TrainingResult result, string folder, string unit, TokenizationReport train, TokenizationReport? eval)
    {
        Output.WriteLine();
        Output.WriteLine($"training data: {train.Describe(unit)}" + (eval is null ? "" : $"; evaluation data: {eval.Describe(unit)}") + ".");
        Output.WriteLine($"{result.Steps}/{result.TotalSteps} steps{(result.StoppedEarly ? " (stopped early)" : "")}; " +
                         $"model saved to {folder}, metrics in {Path.Combine(folder, "metrics.jsonl")}.");
        return 0;
    }
}
