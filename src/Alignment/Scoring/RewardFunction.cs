namespace Alignment.Scoring;

/// <summary>
/// Reward functions for GRPO, RLOO and PPO: TRL's built-in ones under their names, and adapters that make a reward
/// model, a judge or a delegate one.
/// </summary>
public static class RewardFunction
{
    /// <summary>
    /// TRL's <c>accuracy_reward</c>: 1 when the completion's final answer equals the dataset's <paramref name="column"/>
    /// (TRL's <c>solution</c>), else 0; abstains (null) when the solution is null or empty.
    /// <list type="bullet">
    /// <item>The reference: the content of the solution's last <c>\boxed{…}</c>, else the text after its last <c>####</c>
    /// (GSM8K's convention), else all of it; trimmed.</item>
    /// <item>The completion's answer: the content of its last <c>\boxed{…}</c>, else of its last
    /// <c>&lt;answer&gt;…&lt;/answer&gt;</c>, else — when the reference is a number — its last number, else its last
    /// non-empty line without an <c>answer:</c> / <c>final answer:</c> / <c>the answer is</c> lead.</item>
    /// <item>Equal when both read as numbers (integers, decimals, exponents, <c>a/b</c>, <c>\frac{a}{b}</c>, thousands
    /// commas, a sign, surrounding <c>$</c>) within 1e-9 relative; otherwise when the texts are equal after trimming,
    /// collapsing white space, ignoring case, and dropping surrounding <c>$</c> and a final period.</item>
    /// </list>
    /// TRL compares LaTeX expressions with math_verify; this covers verifiable tasks with a numeric or short textual answer.
    /// </summary>
    /// <exception cref="InvalidOperationException">(When scoring) a prompt's dataset line has no such column.</exception>
    /// <param name="column">The dataset column that holds the reference answer.</param>
    /// <exception cref="ArgumentException"><paramref name="column"/> is empty.</exception>
    public static IRewardFunction Accuracy(string column = "solution") => new AccuracyReward("accuracy_reward", column, null);

    /// <summary>
    /// TRL's <c>reasoning_accuracy_reward</c>: as <see cref="Accuracy"/> on the text after the last
    /// <paramref name="reasoningDelimiters"/> (<c>&lt;/think&gt;</c> when null); 0, not null, when the completion has
    /// none of them — unfinished reasoning is punished.
    /// </summary>
    /// <param name="column">The dataset column that holds the reference answer.</param>
    /// <param name="reasoningDelimiters">The strings that end the reasoning; the first one present is used.</param>
    /// <exception cref="ArgumentException"><paramref name="column"/> or a delimiter is empty.</exception>
    public static IRewardFunction ReasoningAccuracy(string column = "solution", IReadOnlyList<string>? reasoningDelimiters = null) =>
        new AccuracyReward("reasoning_accuracy_reward", column, reasoningDelimiters ?? ["</think>"]);

    /// <summary>
    /// TRL's <c>think_format_reward</c>: 1 when the completion starts with a <c>&lt;think&gt;…&lt;/think&gt;</c> block
    /// holding no second <c>&lt;think&gt;</c>, else 0 (the pattern <c>^&lt;think&gt;(?!.*&lt;think&gt;)(.*?)&lt;/think&gt;.*$</c>).
    /// </summary>
    public static IRewardFunction ThinkFormat() => new FormatReward("think_format_reward", "^<think>(?!.*<think>)(.*?)</think>.*$");

    /// <summary>
    /// A format reward: 1 when <paramref name="pattern"/> matches at the start of the completion (Python's
    /// <c>re.match</c> with DOTALL and MULTILINE, as TRL's format rewards use it), else 0.
    /// </summary>
    /// <param name="name">The metric name.</param>
    /// <param name="pattern">A .NET regular expression.</param>
    /// <exception cref="ArgumentException">The name is empty or the pattern is not a valid regular expression.</exception>
    public static IRewardFunction Format(string name, string pattern) => new FormatReward(name, pattern);

    /// <summary>
    /// TRL's <c>get_soft_overlong_punishment</c> (DAPO's eq. 13), logged as <c>soft_overlong_punishment_reward</c>: with
    /// L the completion's token count (its EOS included), 0 when L ≤ max − cache, (max − cache − L) / cache up to max,
    /// and −1 beyond.
    /// </summary>
    /// <param name="maxCompletionLength">L_max, in tokens.</param>
    /// <param name="softPunishCache">L_cache, in tokens: the span before L_max over which the punishment grows.</param>
    /// <exception cref="ArgumentOutOfRangeException">L_max is below 1, or L_cache is negative or above L_max.</exception>
    public static IRewardFunction SoftOverlongPunishment(int maxCompletionLength, int softPunishCache) =>
        new SoftOverlongPunishment(maxCompletionLength, softPunishCache);

    /// <summary>A reward model, a judge (<see cref="JudgeReward"/>) or a rule (<see cref="DelegateReward"/>) as a reward function that never abstains.</summary>
    /// <param name="name">The metric name.</param>
    /// <param name="model">Scores (prompt, completion) pairs.</param>
    /// <exception cref="ArgumentException">The name is empty.</exception>
    public static IRewardFunction From(string name, IRewardModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return new BatchReward(name, samples => model.Score(samples.Select(s => s.Prompt).ToList(), samples.Select(s => s.Completion).ToList())
            .Select(score => (double?)score).ToList());
    }

    /// <summary>A delegate over one sample as a reward function; return null to abstain.</summary>
    /// <param name="name">The metric name.</param>
    /// <param name="score">The reward of one sample.</param>
    /// <exception cref="ArgumentException">The name is empty.</exception>
    public static IRewardFunction From(string name, Func<RewardSample, double?> score)
    {
        ArgumentNullException.ThrowIfNull(score);
        return new BatchReward(name, samples => samples.Select(score).ToList());
    }

    internal static string CheckName(string name) =>
        string.IsNullOrWhiteSpace(name) || name.Any(char.IsWhiteSpace)
            ? throw new ArgumentException($"A reward function's name must be non-empty and free of spaces (it names metrics), got '{name}'.", nameof(name))
            : name;
}

/// <summary>A reward function from a delegate over the whole batch.</summary>
internal sealed class BatchReward(string name, Func<IReadOnlyList<RewardSample>, IReadOnlyList<double?>> score) : IRewardFunction
{
    public string Name { get; } = RewardFunction.CheckName(name);

    public IReadOnlyList<double?> Score(IReadOnlyList<RewardSample> samples) => score(samples);
}
