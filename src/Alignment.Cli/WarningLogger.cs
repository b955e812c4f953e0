using Microsoft.Extensions.Logging;

namespace Alignment.Cli;

/// <summary>Writes warnings and errors of the library (a damaged checkpoint passed over, a skipped step …) to standard error.</summary>
internal sealed class WarningLogger(TextWriter error) : ILogger
{
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (IsEnabled(logLevel))
            error.WriteLine($"align: warning: {formatter(state, exception)}");
    }
}
