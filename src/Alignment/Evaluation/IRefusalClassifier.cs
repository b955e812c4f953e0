namespace Alignment.Evaluation;

/// <summary>Decides whether a response refuses its prompt.</summary>
public interface IRefusalClassifier
{
    /// <summary>True when <paramref name="response"/> declines to do what <paramref name="prompt"/> asks.</summary>
    Task<bool> IsRefusalAsync(string prompt, string response, CancellationToken cancellationToken = default);
}
