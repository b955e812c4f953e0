using Alignment.Scoring;
using Alignment.Training;

namespace Alignment.Evaluation;

/// <summary>
/// TRL's <c>WinRateCallback</c>: at every evaluation point, generates on a few prompts with the model being trained and
/// with a baseline (the reference or initial model), judges each pair in both orders (<see cref="WinRate"/>), and
/// reports <c>eval_win_rate</c> (ties as half), its Wilson interval (<c>eval_win_rate_lower</c>/<c>_upper</c>) and the
/// judge's position-bias rate.
/// </summary>
/// <param name="candidate">The model being trained, as a generator.</param>
/// <param name="baseline">The baseline, as a generator (its completions may be cached by the generator itself).</param>
/// <param name="judge">Which completion is better.</param>
/// <param name="prompts">The prompts.</param>
public sealed class WinRateCallback(ICompletionGenerator candidate, ICompletionGenerator baseline, IPreferenceJudge judge, IReadOnlyList<WinRatePrompt> prompts)
    : IEvaluationCallback
{
    readonly IReadOnlyList<WinRatePrompt> _prompts = prompts is { Count: > 0 } ? prompts : throw new ArgumentException("No prompts.", nameof(prompts));

    /// <inheritdoc />
    public void OnLog(TrainingProgress progress)
    {
    }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, double> Evaluate(int step)
    {
        WinRateReport report = WinRate.EvaluateAsync(_prompts, candidate, baseline, judge).GetAwaiter().GetResult();
        return new Dictionary<string, double>
        {
            ["win_rate"] = report.WinRate, ["win_rate_lower"] = report.Lower, ["win_rate_upper"] = report.Upper, ["win_rate_position_bias"] = report.PositionBiasRate,
        };
    }
}
