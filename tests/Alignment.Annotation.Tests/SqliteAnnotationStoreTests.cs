namespace Alignment.Annotation.Tests;

public sealed class SqliteAnnotationStoreTests : IDisposable
{
    readonly Workspace _work = new();

    public void Dispose() => _work.Dispose();

    static StoredVote VoteOn(long item, Rater rater, string choice = "a") => new(item, rater.Id, choice, null, true, 1.5);

    [Fact]
    public void Each_item_gets_its_labels_from_different_raters_and_no_more()
    {
        using var store = _work.Store(count: 2, labels: 2);
        Rater[] raters = new[] { "ann", "bob", "cat" }.Select(store.AddRater).ToArray();
        Assert.Equal(VoteOutcome.Accepted, store.Vote(raters[0], VoteOn(1, raters[0])));
        Assert.Equal(VoteOutcome.AlreadyVoted, store.Vote(raters[0], VoteOn(1, raters[0], "b")));
        Assert.Equal(VoteOutcome.Accepted, store.Vote(raters[1], VoteOn(1, raters[1])));
        Assert.Equal(VoteOutcome.ItemFull, store.Vote(raters[2], VoteOn(1, raters[2])));
        Assert.Equal(VoteOutcome.UnknownItem, store.Vote(raters[2], VoteOn(9, raters[2])));
        // A skip is not a label: it takes no slot, and the rater never sees the item again.
        Assert.Equal(VoteOutcome.Accepted, store.Vote(raters[2], VoteOn(2, raters[2], "skip")));
        Assert.Null(store.Next(raters[2]));
        Assert.Equal(2L, store.Next(raters[0])!.Id);
        Assert.Equal((1, 1), store.Progress(raters[0]));
        Assert.Equal(3, store.Votes().Count);
    }

    [Fact]
    public void Undo_removes_the_raters_latest_vote_and_returns_the_item_to_their_queue()
    {
        using var store = _work.Store(count: 3, labels: 1);
        Rater ann = store.AddRater("ann");
        long first = store.Next(ann)!.Id;
        store.Vote(ann, VoteOn(first, ann));
        long second = store.Next(ann)!.Id;
        store.Vote(ann, VoteOn(second, ann, "tie"));
        Assert.Equal(second, store.Undo(ann));
        Assert.Equal(second, store.Next(ann)!.Id);
        Assert.Equal([first], store.Votes().Select(v => v.ItemId));
        Assert.Null(store.Undo(store.AddRater("bob")));
    }

    [Fact]
    public void A_reopened_store_keeps_votes_settings_and_raters_and_refuses_other_settings_or_items()
    {
        string path;
        Rater ann;
        using (var store = _work.Store(count: 2, labels: 2))
        {
            path = store.Path;
            ann = store.AddRater("ann");
            store.Vote(ann, VoteOn(1, ann, "b"));
        }
        using (var again = SqliteAnnotationStore.Open(path))
        {
            Assert.Equal((AnnotationMode.Pairwise, 2), (again.Mode, again.LabelsPerExample));
            Assert.Equal(ann, again.RaterNamed("ann"));
            Assert.Equal("b", again.Votes().Single().Choice);
            string other = _work.File("other.jsonl", """{"prompt": "q", "completion_a": "x", "completion_b": "y"}""");
            Assert.Contains("already holds 2 items", Assert.Throws<InvalidOperationException>(() => again.Import(CandidateReader.Read(other, AnnotationMode.Pairwise))).Message);
            Assert.Contains("already exists", Assert.Throws<ArgumentException>(() => again.AddRater("ann")).Message);
            Assert.Contains("letters, digits", Assert.Throws<ArgumentException>(() => again.AddRater("<b>")).Message);
        }
        Assert.Contains("collects 2 labels per example; --labels-per-example 3", Assert.Throws<ArgumentException>(() => SqliteAnnotationStore.Open(path, labelsPerExample: 3)).Message);
        Assert.Contains("is a pairwise store; --mode rating", Assert.Throws<ArgumentException>(() => SqliteAnnotationStore.Open(path, AnnotationMode.Rating)).Message);
    }

    [Fact]
    public void The_left_side_is_a_stable_function_of_item_and_rater_and_varies_between_them()
    {
        bool[] sides = Enumerable.Range(1, 200).Select(i => LeftRight.Swapped("key", i, 1)).ToArray();
        Assert.Equal(sides, Enumerable.Range(1, 200).Select(i => LeftRight.Swapped("key", i, 1)));
        Assert.InRange(sides.Count(s => s), 70, 130);
        Assert.NotEqual(sides, Enumerable.Range(1, 200).Select(i => LeftRight.Swapped("key", i, 2)));
        Assert.NotEqual(sides, Enumerable.Range(1, 200).Select(i => LeftRight.Swapped("other key", i, 1)));
    }
}
