namespace Alignment.Tests.Tokenization;

/// <summary>A clock that always reads <paramref name="now"/> in UTC, for templates that call <c>strftime_now</c>.</summary>
internal sealed class FixedClock(DateTimeOffset now) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => now;

    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;
}
