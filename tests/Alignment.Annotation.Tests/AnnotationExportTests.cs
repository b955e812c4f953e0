using System.Text.Json.Nodes;
using Alignment.Data;

namespace Alignment.Annotation.Tests;

public sealed class AnnotationExportTests : IDisposable
{
    readonly Workspace _work = new();

    public void Dispose() => _work.Dispose();

    static List<JsonObject> Lines(string path) => File.ReadAllLines(path).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();

    [Fact]
    public void Pairwise_export_writes_each_majority_as_worked_out_by_hand()
    {
        using var store = _work.Store(count: 4, labels: 3);
        Rater[] r = new[] { "ann", "bob", "cat" }.Select(store.AddRater).ToArray();
        // item 1: a a b → chosen a1, agreement 2/3 (flagged at 0.25); item 2: b b b → chosen b2, agreement 1;
        // item 3: a b tie → no majority; item 4: skipped by everyone → nothing.
        string[][] votes = [["a", "a", "b"], ["b", "b", "b"], ["a", "b", "tie"], ["skip", "skip", "skip"]];
        for (int item = 0; item < 4; item++)
            for (int k = 0; k < 3; k++)
                Assert.Equal(VoteOutcome.Accepted, store.Vote(r[k], new StoredVote(item + 1, r[k].Id, votes[item][k], null, k % 2 == 0, 2)));

        string path = Path.Combine(_work.Root, "pairs.jsonl");
        ExportReport report = AnnotationExport.Write(store, path);
        Assert.Equal(new ExportReport(2, 1, 1), report);
        var lines = Lines(path);
        Assert.Equal(("p1", "a1", "b1"), (lines[0]["prompt"]!.GetValue<string>(), lines[0]["chosen"]!.GetValue<string>(), lines[0]["rejected"]!.GetValue<string>()));
        Assert.Equal(2.0 / 3, lines[0]["agreement"]!.GetValue<double>(), 12);
        Assert.True(lines[0]["flagged"]!.GetValue<bool>());
        Assert.Equal(2, lines[0]["votes"]!["a"]!.GetValue<int>());
        Assert.Equal(("b2", "a2", false), (lines[1]["chosen"]!.GetValue<string>(), lines[1]["rejected"]!.GetValue<string>(), lines[1]["flagged"]!.GetValue<bool>()));

        Assert.Equal(new ExportReport(1, 1, 1), AnnotationExport.Write(store, path, excludeFlagged: true));
        // The trainers' reader takes the file as it is.
        var pairs = PreferenceData.ReadPairs(path).ToList();
        Assert.Single(pairs);
    }

    [Fact]
    public void Rated_export_pairs_completions_whose_mean_scores_differ_by_at_least_one()
    {
        using var store = _work.Store(count: 1, labels: 2, mode: AnnotationMode.Rating);
        Rater ann = store.AddRater("ann"), bob = store.AddRater("bob");
        store.Vote(ann, new StoredVote(1, ann.Id, "rated", [5, 3, 4], true, 1));
        store.Vote(bob, new StoredVote(1, bob.Id, "rated", [4, 3, 2], true, 1));
        // Means x 4.5, y 3, z 3: x over y (gap 1.5), x over z (1.5); y and z tie. x > y for both raters (agreement 1);
        // x > z for both (5 > 4, 4 > 2).
        string path = Path.Combine(_work.Root, "rated.jsonl");
        Assert.Equal(2, AnnotationExport.Write(store, path).Pairs);
        var lines = Lines(path);
        Assert.Equal([("x1", "y1"), ("x1", "z1")], lines.Select(l => (l["chosen"]!.GetValue<string>(), l["rejected"]!.GetValue<string>())));
        Assert.Equal([4.5, 4.5], lines.Select(l => l["score_chosen"]!.GetValue<double>()));
        Assert.Equal([3.0, 3.0], lines.Select(l => l["score_rejected"]!.GetValue<double>()));
        Assert.All(lines, l => Assert.Equal(1.0, l["agreement"]!.GetValue<double>()));
    }
}
