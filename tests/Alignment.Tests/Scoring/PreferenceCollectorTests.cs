using Alignment.Data;
using Alignment.Scoring;
using Alignment.Tests.Data;

namespace Alignment.Tests.Scoring;

public sealed class PreferenceCollectorTests() : TempJsonl("alignment-collect-")
{
    sealed class FixedGenerator(string name, params string[] completions) : ICompletionGenerator
    {
        public string Name { get; } = name;

        public Task<IReadOnlyList<string>> GenerateAsync(string prompt, int count, CancellationToken cancellationToken = default) =>
            Task.FromResult<IReadOnlyList<string>>(completions.Take(count).Select(c => $"{c} ({prompt})").ToList());
    }

    [Theory]
    [InlineData(new[] { Preference.First, Preference.First, Preference.Second }, Preference.First, 2.0 / 3)]
    [InlineData(new[] { Preference.Second, Preference.Second, Preference.Second, Preference.Tie }, Preference.Second, 1.0)]
    [InlineData(new[] { Preference.First, Preference.Second }, Preference.Tie, 0.5)]
    [InlineData(new[] { Preference.Tie, Preference.Tie }, Preference.Tie, 0.0)]
    public void Votes_resolve_to_the_majority_of_non_ties(Preference[] votes, Preference majority, double agreement)
    {
        var result = PreferenceCollector.Resolve(votes);
        Assert.Equal(majority, result.Majority);
        Assert.Equal(agreement, result.Agreement, 12);
    }

    [Fact]
    public async Task Collected_pairs_follow_the_majority_flag_disagreement_and_read_back_as_pairs()
    {
        var longer = RuleJudge.FromScore("longer", (_, c) => c.Length);
        var alsoLonger = RuleJudge.FromScore("also_longer", (_, c) => c.Length);
        var shorter = RuleJudge.FromScore("shorter", (_, c) => -c.Length);
        var collector = new PreferenceCollector(
            [new FixedGenerator("a", "x", "xxx"), new FixedGenerator("b", "xxxxx")],
            [longer, alsoLonger, shorter],
            new CollectionOptions { CompletionsPerGenerator = 2, DisagreementThreshold = 0.25 });
        string output = Path.Combine(Folder, "pairs.jsonl");

        CollectionReport report = await collector.CollectAsync(["p1", "p2"], output);

        Assert.Equal(new CollectionReport(Prompts: 2, Completions: 6, PairsJudged: 6, PairsWritten: 6, Ties: 0, Flagged: 6), report);
        var pairs = PreferenceData.ReadPairs(output).Cast<PreferencePair>().ToList();
        Assert.Equal(6, pairs.Count);
        Assert.All(pairs, p => Assert.True(p.Chosen.Text!.Length > p.Rejected.Text!.Length));
        Assert.Contains("\"shorter\":\"rejected\"", System.IO.File.ReadAllLines(output)[0]);

        var strict = new PreferenceCollector([new FixedGenerator("a", "x", "xxx")], [longer, alsoLonger, shorter],
            new CollectionOptions { ExcludeFlagged = true });
        Assert.Equal(0, (await strict.CollectAsync(["p"], output)).PairsWritten);
    }

    [Fact]
    public async Task Best_versus_rest_pairs_the_best_completion_with_each_other()
    {
        var collector = new PreferenceCollector([new FixedGenerator("a", "y", "yy", "yyyy", "yyy")], [RuleJudge.FromScore("longer", (_, c) => c.Length)],
            new CollectionOptions { CompletionsPerGenerator = 4, Pairing = PairingStrategy.BestVsRest, QualityScore = (_, c) => c.Length });
        string output = Path.Combine(Folder, "best.jsonl");
        CollectionReport report = await collector.CollectAsync(["p"], output);
        Assert.Equal(3, report.PairsWritten);
        Assert.All(PreferenceData.ReadPairs(output).Cast<PreferencePair>(), p => Assert.Equal("yyyy (p)", p.Chosen.Text));
    }
}
