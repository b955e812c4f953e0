using System.Text.Json;
using System.Text.Json.Nodes;
using Alignment.Scoring;

namespace Alignment.Evaluation;

/// <summary>
/// Win rate of a candidate against a baseline: each prompt's two completions are judged in both orders (so the judge's
/// position bias cancels: a verdict that flips with the order is a tie), every verdict is written to a JSONL file a
/// person can audit, and the report has the win rate, its interval, the position-bias rate, the lengths and a
/// length-controlled win rate.
/// </summary>
public static class WinRate
{
    /// <summary>Generates one completion per prompt with each generator (batched when it can: <see cref="ModelCompletionGenerator"/> is), then judges them (see <see cref="JudgeAsync"/>).</summary>
    /// <param name="prompts">The prompts.</param>
    /// <param name="candidate">The model under evaluation (seed its sampling for a reproducible report).</param>
    /// <param name="baseline">The model it is compared with.</param>
    /// <param name="judge">Which completion is better.</param>
    /// <param name="verdictsPath">A JSONL file for every verdict, or null.</param>
    /// <param name="cancellationToken">Stops between prompts.</param>
    public static async Task<WinRateReport> EvaluateAsync(IReadOnlyList<WinRatePrompt> prompts, ICompletionGenerator candidate, ICompletionGenerator baseline,
        IPreferenceJudge judge, string? verdictsPath = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(candidate);
        ArgumentNullException.ThrowIfNull(baseline);
        var texts = prompts.Select(p => p.Prompt).ToList();
        IReadOnlyList<string> candidates = await candidate.GenerateEachAsync(texts, cancellationToken).ConfigureAwait(false);
        IReadOnlyList<string> baselines = await baseline.GenerateEachAsync(texts, cancellationToken).ConfigureAwait(false);
        return await JudgeAsync([.. prompts.Select((p, i) => (p, candidates[i], baselines[i]))], judge, verdictsPath, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Judges each (prompt, candidate, baseline) twice — candidate first, then baseline first — and reports. A win needs the
    /// candidate preferred in both orders, a loss the baseline in both; anything else is a tie.
    /// </summary>
    /// <param name="pairs">Each prompt with the candidate's and the baseline's completion.</param>
    /// <param name="judge">Which completion is better.</param>
    /// <param name="verdictsPath">A JSONL file for every verdict (prompt, category, both completions, both verdicts, outcome), or null.</param>
    /// <param name="cancellationToken">Stops between pairs.</param>
    /// <exception cref="ArgumentException">No pairs.</exception>
    public static async Task<WinRateReport> JudgeAsync(IReadOnlyList<(WinRatePrompt Prompt, string Candidate, string Baseline)> pairs, IPreferenceJudge judge,
        string? verdictsPath = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        ArgumentNullException.ThrowIfNull(judge);
        if (pairs.Count == 0)
            throw new ArgumentException("No pairs to judge.", nameof(pairs));
        var verdicts = new List<PairVerdict>();
        foreach (var (prompt, candidate, baseline) in pairs)
        {
            Judgement candidateFirst = await judge.JudgeAsync(prompt.Prompt, candidate, baseline, cancellationToken).ConfigureAwait(false);
            Judgement baselineFirst = await judge.JudgeAsync(prompt.Prompt, baseline, candidate, cancellationToken).ConfigureAwait(false);
            verdicts.Add(new PairVerdict(prompt.Prompt, prompt.Category, candidate, baseline, candidateFirst, baselineFirst, Outcome(candidateFirst, baselineFirst)));
        }
        if (verdictsPath is not null)
            WriteVerdicts(verdictsPath, verdicts);
        return Summarise(verdicts);
    }

    /// <summary>The outcome for the candidate of its two verdicts (candidate first, baseline first).</summary>
    public static PairOutcome Outcome(Judgement candidateFirst, Judgement baselineFirst) =>
        (candidateFirst.Preferred, baselineFirst.Preferred) switch
        {
            (Preference.First, Preference.Second) => PairOutcome.Win,
            (Preference.Second, Preference.First) => PairOutcome.Loss,
            _ => PairOutcome.Tie,
        };

    /// <summary>The report of judged pairs, with a breakdown by category when any pair has one.</summary>
    /// <exception cref="ArgumentException">No verdicts.</exception>
    public static WinRateReport Summarise(IReadOnlyList<PairVerdict> verdicts)
    {
        ArgumentNullException.ThrowIfNull(verdicts);
        if (verdicts.Count == 0)
            throw new ArgumentException("No verdicts.", nameof(verdicts));
        var byCategory = verdicts.Where(v => v.Category is not null).GroupBy(v => v.Category!)
            .ToDictionary(g => g.Key, g => Report(g.ToList(), new Dictionary<string, WinRateReport>()));
        return Report(verdicts, byCategory);
    }

    static WinRateReport Report(IReadOnlyList<PairVerdict> verdicts, IReadOnlyDictionary<string, WinRateReport> byCategory)
    {
        int n = verdicts.Count;
        int wins = verdicts.Count(v => v.Outcome == PairOutcome.Win), losses = verdicts.Count(v => v.Outcome == PairOutcome.Loss);
        int ties = n - wins - losses;
        double rate = (wins + 0.5 * ties) / n;
        var (lower, upper) = Wilson(rate, n);
        return new WinRateReport(wins, ties, losses, rate, lower, upper, verdicts.Count(v => v.PositionBiased) / (double)n,
            verdicts.Average(v => v.Candidate.Length), verdicts.Average(v => v.Baseline.Length), LengthControlled(verdicts), byCategory, verdicts);
    }

    /// <summary>The 95 % Wilson score interval of a proportion <paramref name="p"/> of <paramref name="n"/> trials.</summary>
    internal static (double Lower, double Upper) Wilson(double p, int n)
    {
        const double z = 1.959963984540054;
        double denominator = 1 + z * z / n;
        double centre = (p + z * z / (2 * n)) / denominator;
        double half = z * Math.Sqrt(p * (1 - p) / n + z * z / (4.0 * n * n)) / denominator;
        return (Math.Max(0, centre - half), Math.Min(1, centre + half));
    }

    /// <summary>σ(a) of the outcome's logistic regression on the standardised length difference; null when it cannot be fitted.</summary>
    static double? LengthControlled(IReadOnlyList<PairVerdict> verdicts)
    {
        var differences = verdicts.Select(v => (double)(v.Candidate.Length - v.Baseline.Length)).ToList();
        double spread = Math.Sqrt(differences.Sum(d => d * d) / differences.Count); // about zero, not the mean: Δ = 0 must stay 0
        if (verdicts.Count < 2 || spread == 0)
            return null;
        var y = verdicts.Select(v => v.Outcome switch { PairOutcome.Win => 1.0, PairOutcome.Loss => 0.0, _ => 0.5 }).ToList();
        var (a, _) = LengthControl.Fit(differences.Select(d => d / spread).ToList(), y);
        return 1 / (1 + Math.Exp(-a));
    }

    static void WriteVerdicts(string path, IReadOnlyList<PairVerdict> verdicts)
    {
        string? folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (folder is not null)
            Directory.CreateDirectory(folder);
        using var writer = new StreamWriter(path);
        foreach (PairVerdict v in verdicts)
            writer.WriteLine(new JsonObject
            {
                ["prompt"] = v.Prompt, ["category"] = v.Category, ["candidate"] = v.Candidate, ["baseline"] = v.Baseline,
                ["candidate_first"] = Verdict(v.CandidateFirst), ["baseline_first"] = Verdict(v.BaselineFirst),
                ["outcome"] = v.Outcome.ToString().ToLowerInvariant(), ["position_biased"] = v.PositionBiased,
            }.ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
    }

    static JsonObject Verdict(Judgement judgement) => new()
    {
        ["preferred"] = judgement.Preferred.ToString().ToLowerInvariant(), ["confidence"] = judgement.Confidence,
    };
}
