using Microsoft.Extensions.Logging;

namespace Alignment.Cli;

/// <summary>
/// Writes warnings and errors of the library (a damaged checkpoint passed over, a skipped step …) to standard error,
/// and the engine's opening line (steps, trainable parameters, device, threads, optimizer state) to standard output;
/// per-step lines are left to the progress bar.
/// </summary>
internal sealed class WarningLogger(TextWriter output, TextWriter error) : ILogger
{
    /// <summary>The engine's "training N steps … with T threads" line.</summary>
    const int StartEvent = 6000, DataParallelEvent = 6008;

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (logLevel >= LogLevel.Warning)
            error.WriteLine($"align: warning: {formatter(state, exception)}");
        else if (eventId.Id is StartEvent or DataParallelEvent)
            output.WriteLine(formatter(state, exception));
    }
}
