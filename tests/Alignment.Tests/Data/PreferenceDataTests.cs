using Alignment.Data;
using Alignment.Tokenization;

namespace Alignment.Tests.Data;

public sealed class PreferenceDataTests() : TempJsonl("alignment-data-")
{
    [Fact]
    public void Standard_pairs_are_read_as_text()
    {
        var pair = Assert.IsType<PreferencePair>(Assert.Single(PreferenceData.ReadPairs(File("""{"prompt": "2+2=", "chosen": " 4", "rejected": " 5"}"""))));
        Assert.Equal("2+2=", pair.Prompt.Text);
        Assert.Equal(" 4", pair.Chosen.Text);
        Assert.Equal(" 5", pair.Rejected.Text);
        Assert.Equal(1, pair.Source.Line);
    }

    [Fact]
    public void Conversational_pairs_are_read_as_messages()
    {
        string line = """{"prompt": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hello!"}], "rejected": [{"role": "assistant", "content": "Go away."}]}""";
        var pair = Assert.IsType<PreferencePair>(Assert.Single(PreferenceData.ReadPairs(File(line))));
        Assert.Equal([new ChatMessage("system", "Be kind."), new ChatMessage("user", "Hi")], pair.Prompt.Messages);
        Assert.Equal([new ChatMessage("assistant", "Hello!")], pair.Chosen.Messages);
    }

    [Fact]
    public void An_implicit_prompt_is_the_shared_prefix_of_the_two_conversations()
    {
        string line = """{"chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}], "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "No."}]}""";
        var pair = Assert.IsType<PreferencePair>(Assert.Single(PreferenceData.ReadPairs(File(line))));
        Assert.Equal([new ChatMessage("user", "Hi")], pair.Prompt.Messages);
        Assert.Equal([new ChatMessage("assistant", "No.")], pair.Rejected.Messages);

        var text = Assert.IsType<PreferencePair>(Assert.Single(PreferenceData.ReadPairs(File("""{"chosen": "Q: sky? A: blue", "rejected": "Q: sky? A: green"}"""))));
        Assert.Equal("Q: sky? A:", text.Prompt.Text);
        Assert.Equal(" blue", text.Chosen.Text);
    }

    [Fact]
    public void Pretokenized_pairs_are_used_as_is()
    {
        var pair = Assert.IsType<PretokenizedPair>(Assert.Single(PreferenceData.ReadPairs(File("""{"prompt_input_ids": [1, 2], "chosen_input_ids": [3, 4], "rejected_input_ids": [5]}"""))));
        Assert.Equal([1, 2], pair.Prompt);
        Assert.Equal([5], pair.Rejected);
    }

    [Fact]
    public void Multi_turn_parallel_lists_give_one_pair_per_exchange_with_the_accepted_history()
    {
        string line = """{"Template": ["You are terse."], "User": ["a?", "b?"], "Accepted": ["A.", "B."], "Rejected": ["x", "y"]}""";
        var pairs = PreferenceData.ReadPairs(File(line)).Cast<PreferencePair>().ToList();
        Assert.Equal(2, pairs.Count);
        Assert.Equal([new ChatMessage("system", "You are terse."), new ChatMessage("user", "a?")], pairs[0].Prompt.Messages);
        Assert.Equal([new ChatMessage("system", "You are terse."), new ChatMessage("user", "a?"), new ChatMessage("assistant", "A."), new ChatMessage("user", "b?")],
            pairs[1].Prompt.Messages);
        Assert.Equal("B.", pairs[1].Chosen.Messages![0].Content);
        Assert.Equal("y", pairs[1].Rejected.Messages![0].Content);

        var custom = PreferenceData.ReadPairs(File("""{"Template": ["CUSTOM"], "User": ["a?"], "Accepted": ["A."], "Rejected": ["x"]}""")).Cast<PreferencePair>().Single();
        Assert.Equal([new ChatMessage("user", "a?")], custom.Prompt.Messages);
    }

    [Theory]
    [InlineData("""{"prompt": "p", "chosen": "c"}""", "field 'rejected': is missing")]
    [InlineData("""{"prompt": "p", "chosen": "", "rejected": "r"}""", "field 'chosen': is empty")]
    [InlineData("""{"prompt": "p", "chosen": 3, "rejected": "r"}""", "field 'chosen': expected a string, found a number")]
    [InlineData("""{"prompt": [{"role": "user", "content": "p"}], "chosen": [{"role": "user", "content": "c"}], "rejected": [{"role": "assistant", "content": "r"}]}""", "field 'chosen': a completion must consist of assistant messages")]
    [InlineData("""{"prompt": [{"role": "robot", "content": "p"}], "chosen": [], "rejected": []}""", "field 'prompt[0].role': 'robot'")]
    [InlineData("""{"User": ["a"], "Accepted": ["A", "B"], "Rejected": ["x"]}""", "field 'Accepted': has 2 entries but \"User\" has 1")]
    [InlineData("""{"chosen_input_ids": [1, -2], "rejected_input_ids": [3]}""", "field 'chosen_input_ids[1]'")]
    [InlineData("""{"prompt": "p", "chosen": "c", "rejected": "r" """, "not valid JSON")]
    [InlineData("""[1, 2]""", "not a JSON object")]
    public void Each_bad_line_is_named_with_file_line_and_field(string bad, string expected)
    {
        string path = File("""{"prompt": "ok", "chosen": "a", "rejected": "b"}""", "", bad);
        var error = Assert.Throws<DataFormatException>(() => PreferenceData.ReadPairs(path).ToList());
        Assert.Contains($"{path}:3: ", error.Message);
        Assert.Contains(expected, error.Message);
        Assert.Equal(3, error.Location.Line);
    }

    [Fact]
    public void Skipping_bad_rows_reports_their_count_and_first_lines()
    {
        string path = File(
            """{"prompt": "a", "chosen": "x", "rejected": "y"}""",
            """{"prompt": "b", "chosen": "", "rejected": "y"}""",
            """not json""",
            """{"prompt": "a", "chosen": "x", "rejected": "y"}""",
            """{"prompt": "c", "chosen": "same", "rejected": "same"}""");
        var report = new DataReadReport();
        var pairs = PreferenceData.ReadPairs(path, new DataReadOptions { SkipBadRows = true }, report).ToList();

        Assert.Equal(3, pairs.Count);
        Assert.Equal(2, report.Skipped);
        Assert.Equal([2L, 3L], report.SkippedExamples.Select(e => e.Location.Line));
        Assert.Equal(1, report.Duplicates);
        Assert.Equal(4, report.DuplicateExamples.Single().Line);
        Assert.Equal(1, report.ChosenEqualsRejected);
        Assert.Contains("2 skipped", report.ToString());
    }

    [Fact]
    public void A_missing_file_is_named()
    {
        string path = Path.Combine(Folder, "nope.jsonl");
        Assert.Contains(path, Assert.Throws<FileNotFoundException>(() => PreferenceData.ReadPairs(path).ToList()).Message);
    }

    [Fact]
    public void Shuffles_and_splits_are_deterministic_by_seed()
    {
        int[] items = Enumerable.Range(0, 50).ToArray();
        Assert.Equal(DataSplit.Shuffle(items, 3), DataSplit.Shuffle(items, 3));
        Assert.NotEqual(DataSplit.Shuffle(items, 3), DataSplit.Shuffle(items, 4));
        Assert.Equal(items, DataSplit.Shuffle(items, 3).Order());
        var (train, eval) = DataSplit.TrainEval(items, 0.1, seed: 7);
        Assert.Equal(5, eval.Count);
        Assert.Equal(items, train.Concat(eval).Order());
        Assert.Equal(12, DataSplit.TrainEval(items, evalCount: 12, seed: 7).Eval.Count);
    }
}
