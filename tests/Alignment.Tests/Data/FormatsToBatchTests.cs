using Alignment.Data;
using Alignment.Kernels;
using Alignment.Tests.Tokenization;
using Alignment.Tokenization;

namespace Alignment.Tests.Data;

/// <summary>Every data format, read from JSONL, tokenized and collated into the batch a trainer consumes.</summary>
public sealed class FormatsToBatchTests : IDisposable
{
    readonly TinyTokenizers _tokenizers = new();

    public void Dispose() => _tokenizers.Dispose();

    string File(params string[] lines)
    {
        string path = Path.Combine(_tokenizers.Root, $"d{Guid.NewGuid():N}.jsonl");
        System.IO.File.WriteAllLines(path, lines);
        return path;
    }

    PreferenceTokenizer Tokenizer(out ModelTokenizer tokenizer)
    {
        tokenizer = ModelTokenizer.FromFolder(_tokenizers.Folder("tok"));
        return new PreferenceTokenizer(tokenizer, ChatTemplates.Named("chatml", tokenizer));
    }

    public static TheoryData<string> PairedFiles => new()
    {
        """{"prompt": "hello", "chosen": " world", "rejected": " the"}""",
        """{"prompt": [{"role": "user", "content": "hello"}], "chosen": [{"role": "assistant", "content": "the world"}], "rejected": [{"role": "assistant", "content": "hello"}]}""",
        """{"chosen": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "world"}], "rejected": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "the"}]}""",
        """{"prompt_input_ids": [1, 2, 3], "chosen_input_ids": [4, 5], "rejected_input_ids": [6]}""",
        """{"Template": ["CUSTOM"], "User": ["hello", "the"], "Accepted": ["world", "world"], "Rejected": ["hello", "the"]}""",
    };

    [Theory]
    [MemberData(nameof(PairedFiles))]
    public void Paired_formats_reach_a_preference_batch_that_scores_exactly_the_completions(string line)
    {
        var pairs = Tokenizer(out var tokenizer).TokenizeAll(PreferenceData.ReadPairs(File(line)), new TokenizationReport()).ToList();
        using var batch = PreferenceCollator.Collate(pairs, tokenizer.PadTokenId!.Value);

        Assert.Equal(2 * pairs.Count, batch.InputIds.shape[0]);
        long expected = pairs.Sum(p => p.Chosen.Length + p.Rejected.Length) - pairs.Count(p => p.Prompt.Length == 0) * 2;
        Assert.Equal(expected, batch.CompletionMask().sum().item<long>());
    }

    [Fact]
    public void Rated_and_voted_data_reach_a_preference_batch()
    {
        var rated = PreferenceFormats.ReadRated(File("""{"prompt": "hello", "completions": [" world", " the", " hello"], "ratings": [5, 3, 1]}"""));
        var voted = PreferenceFormats.ReadVoted(File("""{"prompt": "hello", "completion_a": " world", "completion_b": " the", "votes": ["a", "a", "b"]}""")).Select(v => v.Pair);
        var pairs = Tokenizer(out var tokenizer).TokenizeAll(rated.Concat<PreferenceRecord>(voted), new TokenizationReport()).ToList();
        using var batch = PreferenceCollator.Collate(pairs, tokenizer.PadTokenId!.Value);
        Assert.Equal(2 * (3 + 1), batch.InputIds.shape[0]);
    }

    [Fact]
    public void Unpaired_data_reaches_a_kto_batch_with_rotated_kl_pairs()
    {
        string path = File(
            """{"prompt": "hello", "completion": " world", "label": true}""",
            """{"prompt": [{"role": "user", "content": "the"}], "completion": [{"role": "assistant", "content": "hello"}], "label": false}""",
            """{"prompt_input_ids": [1, 2], "completion_input_ids": [7, 8, 9], "label": true}""");
        var tokenize = Tokenizer(out var tokenizer);
        var examples = PreferenceFormats.ReadUnpaired(path).Select(r => tokenize.Tokenize(r, new TokenizationReport())!).ToList();
        using var batch = CompletionCollator.Collate(examples, tokenizer.PadTokenId!.Value, klPairs: true);

        Assert.Equal([true, false, true], batch.Desirable.data<bool>().ToArray());
        // KL row i: prompt i followed by the completion of example i - 1 (row 0 takes the last one).
        long[] klRow0 = batch.KlInputIds![0].data<long>().ToArray();
        int[] expected = [.. examples[0].Prompt, .. examples[2].Completion];
        Assert.Equal(expected.Select(i => (long)i), klRow0.Take(expected.Length));
        Assert.Equal(examples[2].Completion.Length, batch.KlTargets![0].ne(TokenLogProbs.IgnoreIndex).sum().item<long>());

        using var single = CompletionCollator.Collate(examples.Take(1).ToList(), 0, klPairs: true);
        Assert.Null(single.KlInputIds); // a batch of one has no mismatched pair (see KtoLoss)

        // One process's share (example 1 alone) of the batch pairs with the example before it in the whole batch, example 0.
        using var share = CompletionCollator.Collate([examples[1]], 0, klPairs: true, klPartners: [examples[0]]);
        int[] shared = [.. examples[1].Prompt, .. examples[0].Completion];
        Assert.Equal(shared.Select(i => (long)i), share.KlInputIds![0].data<long>().ToArray().Take(shared.Length));
        Assert.Throws<ArgumentException>(() => CompletionCollator.Collate([examples[1]], 0, klPairs: true, klPartners: examples));
    }

    [Fact]
    public void Sft_data_reaches_a_completion_batch()
    {
        string path = File(
            """{"prompt": "hello", "completion": " world"}""",
            """{"messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "the world"}]}""",
            """{"text": "hello world"}""");
        var tokenize = Tokenizer(out var tokenizer);
        var examples = PreferenceFormats.ReadSft(path).Select(e => tokenize.Tokenize(e, new TokenizationReport())!).ToList();
        using var batch = CompletionCollator.Collate(examples, tokenizer.PadTokenId!.Value);

        Assert.Equal(3, batch.InputIds.shape[0]);
        Assert.All(batch.Desirable.data<bool>().ToArray(), Assert.True);
        // The text example has no prompt: its first token has no position before it to be predicted from.
        long scored = examples.Sum(e => e.Completion.Length) - examples.Count(e => e.Prompt.Length == 0);
        Assert.Equal(scored, batch.Targets.ne(TokenLogProbs.IgnoreIndex).sum().item<long>());
    }
}
