using Alignment.Data;

namespace Alignment.Tests.Data;

public sealed class AnnotationSessionTests : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("alignment-annotate-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    string Input()
    {
        string path = Path.Combine(_folder, "in.jsonl");
        File.WriteAllLines(path, Enumerable.Range(1, 6).Select(i => $$"""{"prompt": "p{{i}}", "completion_a": "good {{i}}", "completion_b": "bad {{i}}"}"""));
        return path;
    }

    [Fact]
    public void Answers_become_pairs_whatever_side_the_good_completion_was_shown_on()
    {
        var session = new AnnotationSession(Input(), Path.Combine(_folder, "out.jsonl"), seed: 3);
        var items = session.Pending().ToList();
        Assert.Contains(items, i => i.Left.StartsWith("bad")); // the sides are shuffled...
        Assert.Contains(items, i => i.Left.StartsWith("good"));
        foreach (AnnotationItem item in items)
            session.Record(item, item.Left.StartsWith("good") ? HumanChoice.Left : HumanChoice.Right);

        var pairs = PreferenceData.ReadPairs(session.OutputPath).Cast<PreferencePair>().ToList();
        Assert.Equal(6, pairs.Count);
        Assert.All(pairs, p => Assert.StartsWith("good", p.Chosen.Text)); // ...and the answer maps back correctly
    }

    [Fact]
    public void A_reopened_session_continues_after_the_answered_lines()
    {
        string input = Input(), output = Path.Combine(_folder, "out.jsonl");
        var first = new AnnotationSession(input, output);
        var items = first.Pending().Take(3).ToList();
        first.Record(items[0], HumanChoice.Left);
        first.Record(items[1], HumanChoice.Tie);
        first.Record(items[2], HumanChoice.Skip);

        var second = new AnnotationSession(input, output);
        Assert.Equal([4L, 5, 6], second.Pending().Select(i => i.SourceLine));
        Assert.Single(File.ReadAllLines(output));
        Assert.Equal(2, File.ReadAllLines(second.UndecidedPath).Length);
    }
}

public sealed class AnnotationUndecidedTests : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("alignment-undecided-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void Ties_keep_the_completions_in_the_inputs_order_whatever_side_they_were_shown_on()
    {
        string input = Path.Combine(_folder, "in.jsonl");
        File.WriteAllLines(input, Enumerable.Range(1, 6).Select(i => $$"""{"prompt": "p{{i}}", "completion_a": "first {{i}}", "completion_b": "second {{i}}"}"""));
        var session = new AnnotationSession(input, Path.Combine(_folder, "out.jsonl"), seed: 3);
        var items = session.Pending().ToList();
        Assert.Contains(items, i => i.Left.StartsWith("second", StringComparison.Ordinal)); // some were shown swapped
        foreach (AnnotationItem item in items)
            session.Record(item, HumanChoice.Tie);

        foreach (string line in File.ReadAllLines(session.UndecidedPath))
        {
            var json = System.Text.Json.Nodes.JsonNode.Parse(line)!;
            Assert.StartsWith("first", json["completion_a"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.StartsWith("second", json["completion_b"]!.GetValue<string>(), StringComparison.Ordinal);
        }
    }
}
