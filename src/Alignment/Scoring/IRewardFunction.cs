namespace Alignment.Scoring;

/// <summary>
/// One of GRPO's reward functions (TRL's <c>reward_funcs</c>): scores a batch of completions, each with its prompt,
/// its token ids and the other columns of its dataset line, and may abstain on any of them. Built-in ones are in
/// <see cref="RewardFunction"/>; a reward model, a delegate or a judge becomes one through <see cref="RewardFunction.From(string, IRewardModel)"/>.
/// </summary>
public interface IRewardFunction
{
    /// <summary>The name metrics are logged under (<c>rewards/&lt;name&gt;/mean</c>); TRL uses the function's name.</summary>
    string Name { get; }

    /// <summary>One reward per sample, in order; null abstains (TRL's None): the sample's weighted sum leaves this function out.</summary>
    /// <param name="samples">The completions to score.</param>
    IReadOnlyList<double?> Score(IReadOnlyList<RewardSample> samples);
}
