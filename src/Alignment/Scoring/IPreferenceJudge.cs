namespace Alignment.Scoring;

/// <summary>Which of two completions a judge prefers.</summary>
public enum Preference
{
    /// <summary>The first completion.</summary>
    First,

    /// <summary>The second completion.</summary>
    Second,

    /// <summary>Neither (or the judge could not tell).</summary>
    Tie,
}

/// <summary>A judge's verdict.</summary>
/// <param name="Preferred">Which completion is better.</param>
/// <param name="Confidence">Probability that the preferred one is better, in [0.5, 1], when the judge can say.</param>
public sealed record Judgement(Preference Preferred, double? Confidence = null);

/// <summary>Decides which of two completions of a prompt is better.</summary>
public interface IPreferenceJudge
{
    /// <summary>A name for reports.</summary>
    string Name { get; }

    /// <summary>Judges one pair.</summary>
    Task<Judgement> JudgeAsync(string prompt, string first, string second, CancellationToken cancellationToken = default);
}
