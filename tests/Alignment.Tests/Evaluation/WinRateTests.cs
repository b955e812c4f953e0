using System.Text.Json.Nodes;
using Alignment.Evaluation;
using Alignment.Scoring;

namespace Alignment.Tests.Evaluation;

public sealed class WinRateTests : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("alignment-winrate-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>A judge that answers from a script: the verdict for (prompt, the completion shown first).</summary>
    sealed class ScriptedJudge(Dictionary<(string Prompt, string First), Preference> script) : IPreferenceJudge
    {
        public string Name => "scripted";

        public Task<Judgement> JudgeAsync(string prompt, string first, string second, CancellationToken cancellationToken = default) =>
            Task.FromResult(new Judgement(script[(prompt, first)]));
    }

    /// <summary>A judge that always prefers whatever it is shown first.</summary>
    sealed class FirstIsBest : IPreferenceJudge
    {
        public string Name => "first";

        public Task<Judgement> JudgeAsync(string prompt, string first, string second, CancellationToken cancellationToken = default) =>
            Task.FromResult(new Judgement(Preference.First));
    }

    [Fact]
    public async Task Wins_ties_losses_interval_and_position_bias_of_crafted_verdicts()
    {
        // Ten prompts: p0–p4 the judge prefers the candidate in both orders (wins), p5–p7 the baseline (losses), p8 it
        // prefers whatever comes first (a flip: tie, position-biased), p9 it calls a tie.
        var script = new Dictionary<(string, string), Preference>();
        var pairs = new List<(WinRatePrompt, string, string)>();
        for (int i = 0; i < 10; i++)
        {
            string prompt = $"p{i}", candidate = $"c{i}", baseline = $"b{i}";
            var (candidateFirst, baselineFirst) = i switch
            {
                < 5 => (Preference.First, Preference.Second),
                < 8 => (Preference.Second, Preference.First),
                8 => (Preference.First, Preference.First),
                _ => (Preference.Tie, Preference.Tie),
            };
            script[(prompt, candidate)] = candidateFirst;
            script[(prompt, baseline)] = baselineFirst;
            pairs.Add((new WinRatePrompt(prompt, i % 2 == 0 ? "even" : "odd"), candidate, baseline));
        }
        string verdicts = Path.Combine(_folder, "verdicts.jsonl");
        WinRateReport report = await WinRate.JudgeAsync(pairs, new ScriptedJudge(script), verdicts);

        Assert.Equal((5, 2, 3), (report.Wins, report.Ties, report.Losses));
        Assert.Equal(0.6, report.WinRate, 12);                 // (5 + 2/2) / 10
        Assert.Equal(0.31267376973365824, report.Lower, 12);  // Wilson, z = 1.96, p = 0.6, n = 10 (the textbook 0.313–0.832)
        Assert.Equal(0.8318196702937638, report.Upper, 12);
        Assert.Equal(0.1, report.PositionBiasRate, 12);       // p8 alone
        Assert.Null(report.LengthControlledWinRate);          // every completion has 2 characters
        // even: p0, p2, p4 won, p6 lost, p8 tie → (3 + 0.5) / 5; odd: p1, p3 won, p5, p7 lost, p9 tie → (2 + 0.5) / 5
        Assert.Equal(0.7, report.ByCategory["even"].WinRate, 12);
        Assert.Equal(0.5, report.ByCategory["odd"].WinRate, 12);

        var lines = File.ReadAllLines(verdicts).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(10, lines.Count);
        Assert.Equal(("p8", "c8", "b8", "first", "first", "tie", true), ((string)lines[8]["prompt"]!, (string)lines[8]["candidate"]!, (string)lines[8]["baseline"]!,
            (string)lines[8]["candidate_first"]!["preferred"]!, (string)lines[8]["baseline_first"]!["preferred"]!, (string)lines[8]["outcome"]!, (bool)lines[8]["position_biased"]!));
    }

    [Fact]
    public async Task A_judge_that_follows_the_order_gives_only_ties()
    {
        var pairs = Enumerable.Range(0, 8).Select(i => (new WinRatePrompt($"p{i}"), $"candidate {i}", $"b{i}")).ToList();
        WinRateReport report = await WinRate.JudgeAsync(pairs, new FirstIsBest());
        Assert.Equal((0, 8, 0), (report.Wins, report.Ties, report.Losses));
        Assert.Equal(0.5, report.WinRate);
        Assert.Equal(1.0, report.PositionBiasRate);
        Assert.Equal(0.21521606221387757, report.Lower, 12);  // Wilson, p = 0.5, n = 8
        Assert.Equal(0.7847839377861224, report.Upper, 12);
        Assert.Equal((11.0, 2.0), (report.CandidateLength, report.BaselineLength)); // "candidate i" and "bi"
    }

    [Fact]
    public void The_length_controlled_win_rate_is_the_logistic_fit_at_equal_length()
    {
        // Ten pairs where the candidate is 40 characters longer (9 wins, 1 loss) and two where it is 40 shorter (1 win,
        // 1 loss). Δ / rms(Δ) is ±1, and the two-point logistic fit is saturated: σ(a + b) = 0.9, σ(a − b) = 0.5, so
        // a = (logit 0.9 + logit 0.5) / 2 = ln 9 / 2 = ln 3 and the win rate at equal length is σ(ln 3) = 0.75 — below
        // the raw 10 / 12, which length flatters.
        string Long(int i) => new('x', 50 + i % 2);
        string Short(int i) => new('y', 10 + i % 2);
        var verdicts = new List<PairVerdict>();
        for (int i = 0; i < 12; i++)
        {
            bool longer = i < 10, win = i < 9 || i == 10;
            var (candidate, baseline) = longer ? (Long(i), Short(i)) : (Short(i), Long(i));
            var (first, second) = win ? (Preference.First, Preference.Second) : (Preference.Second, Preference.First);
            verdicts.Add(new PairVerdict($"p{i}", null, candidate, baseline, new Judgement(first), new Judgement(second), WinRate.Outcome(new(first), new(second))));
        }
        WinRateReport report = WinRate.Summarise(verdicts);
        Assert.Equal(10 / 12.0, report.WinRate, 12);
        Assert.Equal(0.75, report.LengthControlledWinRate!.Value, 6);
        Assert.Empty(report.ByCategory);
    }

    sealed class Echo(string name, Func<string, string> reply) : ICompletionGenerator
    {
        public string Name => name;

        public Task<IReadOnlyList<string>> GenerateAsync(string prompt, int count, CancellationToken cancellationToken = default) =>
            Task.FromResult<IReadOnlyList<string>>([.. Enumerable.Repeat(reply(prompt), count)]);
    }

    [Fact]
    public async Task Generators_supply_the_pairs_that_are_judged()
    {
        // The rule prefers the longer answer: the candidate shouts the prompt twice, the baseline once, except on "tie".
        var judge = RuleJudge.FromScore("longer", (_, answer) => answer.Length);
        var candidate = new Echo("candidate", p => p == "tie" ? p : p + p);
        var baseline = new Echo("baseline", p => p);
        WinRateReport report = await WinRate.EvaluateAsync([new("a"), new("bb"), new("tie")], candidate, baseline, judge);
        Assert.Equal((2, 1, 0), (report.Wins, report.Ties, report.Losses));
        Assert.Equal((3.0, 2.0), (report.CandidateLength, report.BaselineLength)); // (2 + 4 + 3) / 3 and (1 + 2 + 3) / 3
    }
}
