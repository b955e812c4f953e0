using Alignment.Distributed;

namespace Alignment.Cli;

/// <summary>Where a command writes, reads, and what cancels it; under MPI, which process this is.</summary>
internal sealed class CliContext(TextWriter output, TextWriter error, TextReader input, CancellationToken cancel)
{
    readonly RankOutput _output = new(output);

    /// <summary>Standard output: rank 0's only, so that a job of N processes prints one report.</summary>
    public TextWriter Output => _output;

    /// <summary>Standard error, on every process.</summary>
    public TextWriter Error => error;

    /// <summary>Standard input.</summary>
    public TextReader Input => input;

    /// <summary>Stops a command after its current step.</summary>
    public CancellationToken Cancel => cancel;

    /// <summary>The processes of the run (<c>--distributed</c>); one unless MPI started several.</summary>
    public IProcessGroup Processes { get; private set; } = ProcessGroup.Single;

    /// <summary>Whether this process writes the run's files (rank 0).</summary>
    public bool WritesFiles => Processes.Rank == 0;

    /// <summary>Takes part in <paramref name="group"/>: from now on only rank 0 prints to standard output.</summary>
    public void Join(IProcessGroup group)
    {
        Processes = group;
        _output.Muted = group.Rank != 0;
    }

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
        if (WritesFiles)
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

/// <summary>A writer that forwards to another unless muted (the standard output of MPI ranks other than 0).</summary>
internal sealed class RankOutput(TextWriter inner) : TextWriter
{
    public bool Muted { get; set; }

    public override System.Text.Encoding Encoding => inner.Encoding;

    public override void Write(char value)
    {
        if (!Muted)
            inner.Write(value);
    }

    public override void Write(string? value)
    {
        if (!Muted)
            inner.Write(value);
    }

    public override void WriteLine(string? value)
    {
        if (!Muted)
            inner.WriteLine(value);
    }

    public override void Flush() => inner.Flush();
}
