using Alignment.Scoring;

namespace Alignment.Evaluation;

/// <summary>One prompt of a win-rate evaluation, with an optional category for the per-category breakdown.</summary>
/// <param name="Prompt">The prompt (a user turn).</param>
/// <param name="Category">Its category, or null.</param>
public sealed record WinRatePrompt(string Prompt, string? Category = null);

/// <summary>How a pair came out for the candidate after judging it in both orders.</summary>
public enum PairOutcome
{
    /// <summary>The judge preferred the candidate in both orders.</summary>
    Win,

    /// <summary>A tie in either order, or a verdict that flipped with the order.</summary>
    Tie,

    /// <summary>The judge preferred the baseline in both orders.</summary>
    Loss,
}

/// <summary>One judged pair, as written to the verdicts file.</summary>
/// <param name="Prompt">The prompt.</param>
/// <param name="Category">Its category, or null.</param>
/// <param name="Candidate">The candidate's completion.</param>
/// <param name="Baseline">The baseline's completion.</param>
/// <param name="CandidateFirst">The judge's verdict with the candidate shown first.</param>
/// <param name="BaselineFirst">The judge's verdict with the baseline shown first.</param>
/// <param name="Outcome">The outcome for the candidate.</param>
public sealed record PairVerdict(string Prompt, string? Category, string Candidate, string Baseline, Judgement CandidateFirst, Judgement BaselineFirst, PairOutcome Outcome)
{
    /// <summary>Both verdicts were decisive and chose the same position: the judge followed the order, not the content.</summary>
    public bool PositionBiased =>
        CandidateFirst.Preferred != Preference.Tie && CandidateFirst.Preferred == BaselineFirst.Preferred;
}

/// <summary>
/// A win-rate report: wins, ties and losses of the candidate; the win rate with ties as half and its 95 % Wilson score
/// interval; the judge's position-bias rate; mean completion lengths (characters); the length-controlled win rate; and
/// the same per category.
/// </summary>
/// <param name="Wins">Pairs won in both orders.</param>
/// <param name="Ties">Ties and order-dependent verdicts.</param>
/// <param name="Losses">Pairs lost in both orders.</param>
/// <param name="WinRate">(wins + ties / 2) / pairs.</param>
/// <param name="Lower">The 95 % Wilson score interval's lower end, on the win rate with n = pairs.</param>
/// <param name="Upper">Its upper end.</param>
/// <param name="PositionBiasRate">The share of pairs whose two decisive verdicts chose the same position.</param>
/// <param name="CandidateLength">The candidate's mean completion length, in characters.</param>
/// <param name="BaselineLength">The baseline's mean completion length, in characters.</param>
/// <param name="LengthControlledWinRate">σ(a) of the logistic regression σ(a + b·Δ) of the outcome (1, ½, 0) on the length difference Δ
/// (candidate − baseline, in units of its standard deviation): the win rate at equal lengths (AlpacaEval 2.0's idea); null
/// when the lengths never differ or fewer than two pairs were judged.</param>
/// <param name="ByCategory">The same report for each category (without its own breakdown); empty when no prompt has one.</param>
/// <param name="Verdicts">Every judged pair.</param>
public sealed record WinRateReport(int Wins, int Ties, int Losses, double WinRate, double Lower, double Upper, double PositionBiasRate,
    double CandidateLength, double BaselineLength, double? LengthControlledWinRate, IReadOnlyDictionary<string, WinRateReport> ByCategory,
    IReadOnlyList<PairVerdict> Verdicts)
{
    /// <summary>The pairs judged.</summary>
    public int Pairs => Wins + Ties + Losses;
}
