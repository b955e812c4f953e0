namespace Alignment.Scoring;

/// <summary>
/// Scores completions of prompts: a trained reward model (<see cref="Models.RewardModel"/>), a rule
/// (<see cref="DelegateReward"/>) or an LLM judge (<see cref="JudgeReward"/>). <c>PpoLoop</c> trains against one, and
/// <see cref="RewardModelJudge"/> turns one into a pairwise judge.
/// </summary>
public interface IRewardModel
{
    /// <summary>One score per (prompt, completion); higher is better.</summary>
    /// <param name="prompts">The prompts.</param>
    /// <param name="completions">One completion per prompt.</param>
    IReadOnlyList<double> Score(IReadOnlyList<string> prompts, IReadOnlyList<string> completions);
}
