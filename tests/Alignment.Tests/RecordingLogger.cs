using Microsoft.Extensions.Logging;

namespace Alignment.Tests;

/// <summary>Keeps every formatted log message, in order, for tests that assert what the library logs.</summary>
internal sealed class RecordingLogger : ILogger
{
    public List<string> Messages { get; } = [];
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
    public bool IsEnabled(LogLevel logLevel) => true;
    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        Messages.Add(formatter(state, exception));
}
