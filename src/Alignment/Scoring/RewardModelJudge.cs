namespace Alignment.Scoring;

/// <summary>
/// A reward as judge: scores both completions with an <see cref="IRewardModel"/> (typically a trained
/// <see cref="Models.RewardModel"/>) and prefers the higher; the confidence is the Bradley–Terry probability
/// σ(|r₁ − r₂|).
/// </summary>
/// <param name="reward">The reward.</param>
/// <param name="name">A name for reports.</param>
public sealed class RewardModelJudge(IRewardModel reward, string name = "reward_model") : IPreferenceJudge
{
    readonly IRewardModel _reward = reward ?? throw new ArgumentNullException(nameof(reward));

    /// <inheritdoc />
    public string Name { get; } = name;

    /// <inheritdoc />
    public Task<Judgement> JudgeAsync(string prompt, string first, string second, CancellationToken cancellationToken = default)
    {
        IReadOnlyList<double> scores = _reward.Score([prompt, prompt], [first, second]);
        double a = scores[0], b = scores[1];
        double confidence = 1 / (1 + Math.Exp(-Math.Abs(a - b)));
        return Task.FromResult(a == b ? new Judgement(Preference.Tie, 0.5) : new Judgement(a > b ? Preference.First : Preference.Second, confidence));
    }
}
