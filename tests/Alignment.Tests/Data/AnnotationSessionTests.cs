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
