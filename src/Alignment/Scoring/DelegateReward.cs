namespace Alignment.Scoring;

/// <summary>A programmatic reward from a delegate (prompt, completion → score).</summary>
/// <param name="score">The score of one completion.</param>
public sealed class DelegateReward(Func<string, string, double> score) : IRewardModel
{
    /// <inheritdoc />
    public IReadOnlyList<double> Score(IReadOnlyList<string> prompts, IReadOnlyList<string> completions) =>
        prompts.Select((p, i) => score(p, completions[i])).ToList();
}
