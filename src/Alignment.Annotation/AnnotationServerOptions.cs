namespace Alignment.Annotation;

/// <summary>Where and how the annotation server listens.</summary>
public sealed record AnnotationServerOptions
{
    /// <summary>Address to bind; loopback by default (use 0.0.0.0 to serve a team on the network, behind TLS).</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>Port; 0 picks a free one.</summary>
    public int Port { get; init; } = 5000;

    /// <summary>Items whose disagreement exceeds it are flagged on the dashboard.</summary>
    public double DisagreementThreshold { get; init; } = 0.25;

    /// <summary>Largest request body accepted (a vote is well under 1 KiB); larger ones get 413.</summary>
    public long MaxRequestBodyBytes { get; init; } = 16 * 1024;
}
