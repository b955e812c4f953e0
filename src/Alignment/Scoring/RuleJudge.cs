namespace Alignment.Scoring;

/// <summary>A judge from a delegate: rule-based or programmatic preferences.</summary>
public sealed class RuleJudge(string name, Func<string, string, string, Judgement> rule) : IPreferenceJudge
{
    /// <summary>A judge that prefers the completion with the higher score (tie when equal).</summary>
    public static RuleJudge FromScore(string name, Func<string, string, double> score) => new(name, (prompt, a, b) =>
    {
        double sa = score(prompt, a), sb = score(prompt, b);
        return sa == sb ? new Judgement(Preference.Tie) : new Judgement(sa > sb ? Preference.First : Preference.Second);
    });

    /// <inheritdoc />
    public string Name { get; } = name;

    /// <inheritdoc />
    public Task<Judgement> JudgeAsync(string prompt, string first, string second, CancellationToken cancellationToken = default) =>
        Task.FromResult(rule(prompt, first, second));
}
