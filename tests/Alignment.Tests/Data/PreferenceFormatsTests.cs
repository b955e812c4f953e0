using Alignment.Data;
using Alignment.Tokenization;

namespace Alignment.Tests.Data;

public sealed class PreferenceFormatsTests() : TempJsonl("alignment-formats-")
{
    [Fact]
    public void Unpaired_examples_keep_their_labels_in_every_form()
    {
        var records = PreferenceFormats.ReadUnpaired(File(
            """{"prompt": "p", "completion": "good", "label": true}""",
            """{"prompt": [{"role": "user", "content": "p"}], "completion": [{"role": "assistant", "content": "bad"}], "label": false}""",
            """{"prompt_input_ids": [1], "completion_input_ids": [2, 3], "label": true}""")).ToList();
        Assert.True(Assert.IsType<UnpairedExample>(records[0]).Desirable);
        Assert.False(Assert.IsType<UnpairedExample>(records[1]).Desirable);
        Assert.Equal([2, 3], Assert.IsType<PretokenizedUnpaired>(records[2]).Completion);
    }

    [Fact]
    public void A_label_that_is_not_a_boolean_is_named()
    {
        string path = File("""{"prompt": "p", "completion": "c", "label": "yes"}""");
        var error = Assert.Throws<DataFormatException>(() => PreferenceFormats.ReadUnpaired(path).ToList());
        Assert.Contains($"{path}:1: field 'label'", error.Message);
    }

    [Fact]
    public void Pairs_convert_to_one_desirable_and_one_undesirable_example()
    {
        var source = new SourceLocation("x", 1);
        var pair = new PreferencePair(Content.FromText("p"), Content.FromText("c"), Content.FromText("r"), source);
        var unpaired = PreferenceFormats.ToUnpaired([pair]).ToList();
        Assert.Equal([("c", true), ("r", false)], unpaired.Select(u => (u.Completion.Text!, u.Desirable)));
    }

    [Fact]
    public void Sft_examples_come_from_prompt_completion_messages_or_text()
    {
        var examples = PreferenceFormats.ReadSft(File(
            """{"prompt": "Q:", "completion": " A"}""",
            """{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}, {"role": "user", "content": "again"}, {"role": "assistant", "content": "yo yo"}]}""",
            """{"text": "free text"}""")).ToList();
        Assert.Equal(" A", examples[0].Completion.Text);
        Assert.Equal(3, examples[1].Prompt.Messages!.Count);
        Assert.Equal([new ChatMessage("assistant", "yo yo")], examples[1].Completion.Messages);
        Assert.Equal("", examples[2].Prompt.Text);
        Assert.Equal("free text", examples[2].Completion.Text);
    }

    [Fact]
    public void Ratings_become_all_pairs_above_the_gap_or_best_versus_worst()
    {
        string path = File("""{"prompt": "p", "completions": ["w", "x", "y", "z"], "ratings": [5, 4, 4, 1]}""");
        var all = PreferenceFormats.ReadRated(path, RatingPairing.AllPairsAboveGap, minimumGap: 1).Select(p => (p.Chosen.Text, p.Rejected.Text)).ToList();
        Assert.Equal([("w", "x"), ("w", "y"), ("w", "z"), ("x", "z"), ("y", "z")], all);
        var wide = PreferenceFormats.ReadRated(path, RatingPairing.AllPairsAboveGap, minimumGap: 3.5).Select(p => (p.Chosen.Text, p.Rejected.Text));
        Assert.Equal([("w", "z")], wide);
        var best = PreferenceFormats.ReadRated(path, RatingPairing.BestVsWorst).Single();
        Assert.Equal(("w", "z"), (best.Chosen.Text, best.Rejected.Text));
        Assert.Empty(PreferenceFormats.ReadRated(File("""{"prompt": "p", "completions": ["a", "b"], "ratings": [3, 3]}""")));
    }

    [Fact]
    public void Votes_resolve_by_majority_and_flag_disagreement()
    {
        string path = File(
            """{"prompt": "p", "completion_a": "A", "completion_b": "B", "votes": ["a", "a", "a", "a"]}""",
            """{"prompt": "p", "completion_a": "A", "completion_b": "B", "votes": ["b", "a", "b", "tie"]}""",
            """{"prompt": "p", "completion_a": "A", "completion_b": "B", "votes": ["a", "b"]}""");
        var report = new DataReadReport();
        var voted = PreferenceFormats.ReadVoted(path, disagreementThreshold: 0.25, report: report).ToList();

        Assert.Equal(2, voted.Count);
        Assert.Equal(("A", "B", 1.0, false), (voted[0].Pair.Chosen.Text, voted[0].Pair.Rejected.Text, voted[0].Agreement, voted[0].Flagged));
        Assert.Equal(("B", "A"), (voted[1].Pair.Chosen.Text, voted[1].Pair.Rejected.Text));
        Assert.Equal(2.0 / 3.0, voted[1].Agreement, 12);
        Assert.True(voted[1].Flagged); // disagreement 1/3 > 0.25
        Assert.Equal(1, report.Skipped); // the 1–1 tie
        Assert.Single(PreferenceFormats.ReadVoted(path, 0.25, excludeFlagged: true));
    }

    [Fact]
    public void Prompt_examples_keep_the_other_columns_of_their_line()
    {
        string path = File(
            """{"prompt": "2+2?", "solution": "4", "level": 1}""",
            """{"prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "3+5?"}], "solution": 8, "tags": ["a"]}""",
            """{"prompt": "no columns"}""");
        var examples = PreferenceFormats.ReadPromptExamples(path).ToList();
        Assert.Equal(["2+2?", "3+5?", "no columns"], examples.Select(e => e.Prompt));
        Assert.Equal(["level", "solution"], examples[0].Columns.Keys.Order());
        Assert.Equal("4", examples[0].Columns["solution"]!.GetValue<string>());
        Assert.Equal(8, examples[1].Columns["solution"]!.GetValue<int>());
        Assert.Equal("""["a"]""", examples[1].Columns["tags"]!.ToJsonString());
        Assert.Empty(examples[2].Columns);
        Assert.Equal(new SourceLocation(path, 2), examples[1].Source);
        Assert.Equal(examples.Select(e => e.Prompt), PreferenceFormats.ReadPrompts(path));
    }
}
