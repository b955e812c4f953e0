using Alignment.Data;
using Alignment.Kernels;
using Alignment.Tests.Tokenization;
using Alignment.Tokenization;

namespace Alignment.Tests.Data;

public sealed class PreferenceTokenizerTests : IDisposable
{
    readonly TinyTokenizers _tokenizers = new();
    static readonly SourceLocation Here = new("test.jsonl", 1);

    public void Dispose() => _tokenizers.Dispose();

    ModelTokenizer Tokenizer() => ModelTokenizer.FromFolder(_tokenizers.Folder("tok"));

    [Fact]
    public void Text_pairs_end_with_eos_and_join_exactly_into_the_full_texts_tokens()
    {
        var tokenizer = Tokenizer();
        var pair = new PreferencePair(Content.FromText("hello"), Content.FromText(" world"), Content.FromText(" the hello"), Here);
        TokenizedPair ids = new PreferenceTokenizer(tokenizer, null).Tokenize(pair, new TokenizationReport())!;

        int eos = TinyTokenizers.SpecialId("<|im_end|>");
        Assert.Equal(tokenizer.EncodeContent("hello world").Append(eos), ids.Prompt.Concat(ids.Chosen));
        Assert.Equal(tokenizer.EncodeContent("hello the hello").Append(eos), ids.Prompt.Concat(ids.Rejected));
    }

    [Fact]
    public void Conversational_pairs_go_through_the_chat_template_split_at_the_prompt()
    {
        var tokenizer = Tokenizer();
        IChatTemplate template = ChatTemplates.Named("chatml", tokenizer);
        ChatMessage[] prompt = [new("user", "hello")];
        var pair = new PreferencePair(Content.FromMessages(prompt), Content.FromMessages([new("assistant", "the world")]),
            Content.FromMessages([new("assistant", "hello")]), Here);

        TokenizedPair ids = new PreferenceTokenizer(tokenizer, template).Tokenize(pair, new TokenizationReport())!;

        Assert.Equal(tokenizer.Encode(template.Render([.. prompt, new("assistant", "the world")], false)), ids.Prompt.Concat(ids.Chosen));
        Assert.Equal(tokenizer.Encode(template.Render(prompt, true)), ids.Prompt);
        Assert.Equal(TinyTokenizers.SpecialId("<|im_end|>"), ids.Chosen[^2]); // then the template's "\n"
    }

    [Fact]
    public void Conversational_data_without_a_template_is_refused_by_name()
    {
        var pair = new PreferencePair(Content.FromMessages([new("user", "hi")]), Content.FromMessages([new("assistant", "a")]),
            Content.FromMessages([new("assistant", "b")]), Here);
        var error = Assert.Throws<DataFormatException>(() => new PreferenceTokenizer(Tokenizer(), null).Tokenize(pair, new TokenizationReport()));
        Assert.Contains("test.jsonl:1", error.Message);
    }

    [Fact]
    public void Limits_cut_prompts_from_the_start_and_completions_from_the_end_and_drop_what_cannot_fit()
    {
        var tokenizer = new PreferenceTokenizer(Tokenizer(), null,
            new TokenizationOptions { MaxPromptLength = 3, MaxCompletionLength = 4, MaxLength = 6 });
        var report = new TokenizationReport();

        TokenizedPair cut = tokenizer.Tokenize(new PretokenizedPair([1, 2, 3, 4, 5], [10, 11, 12, 13, 14], [20], Here), report)!;
        Assert.Equal([3, 4, 5], cut.Prompt);          // keep_end
        Assert.Equal([10, 11, 12], cut.Chosen);       // keep_start, to fit max_length 6 - 3
        Assert.Equal([20], cut.Rejected);

        var dropping = new PreferenceTokenizer(Tokenizer(), null, new TokenizationOptions { MaxLength = 3 });
        Assert.Null(dropping.Tokenize(new PretokenizedPair([1, 2, 3], [4], [5], Here), report));
        Assert.Equal(1, report.PromptsTruncated);
        Assert.Equal(1, report.CompletionsTruncated);
        Assert.Equal(1, report.Dropped);
        Assert.Equal(Here, report.DroppedExamples.Single());
    }

    [Fact]
    public void The_collators_targets_select_exactly_the_completion_tokens()
    {
        TokenizedPair[] pairs =
        [
            new([1, 2, 3], [10, 11], [20], Here),
            new([4], [12, 13, 14], [21, 22], Here),
        ];
        using var batch = PreferenceCollator.Collate(pairs, padTokenId: 0);

        Assert.Equal(new long[] { 4, 5 }, batch.InputIds.shape);
        long[,] expectedIds = { { 1, 2, 3, 10, 11 }, { 4, 12, 13, 14, 0 }, { 1, 2, 3, 20, 0 }, { 4, 21, 22, 0, 0 } };
        long[,] expectedMask = { { 1, 1, 1, 1, 1 }, { 1, 1, 1, 1, 0 }, { 1, 1, 1, 1, 0 }, { 1, 1, 1, 0, 0 } };
        const long I = TokenLogProbs.IgnoreIndex;
        long[,] expectedTargets = { { I, I, 10, 11, I }, { 12, 13, 14, I, I }, { I, I, 20, I, I }, { 21, 22, I, I, I } };
        for (int r = 0; r < 4; r++)
            for (int t = 0; t < 5; t++)
            {
                Assert.Equal(expectedIds[r, t], batch.InputIds[r, t].item<long>());
                Assert.Equal(expectedMask[r, t], batch.AttentionMask[r, t].item<long>());
                Assert.Equal(expectedTargets[r, t], batch.Targets[r, t].item<long>());
            }
        Assert.Equal(2 + 3 + 1 + 2, batch.CompletionMask().sum().item<long>());
    }

    [Fact]
    public void A_jsonl_file_flows_into_a_batch()
    {
        string path = Path.Combine(_tokenizers.Root, "pairs.jsonl");
        File.WriteAllLines(path,
        [
            """{"prompt": "hello", "chosen": " world", "rejected": " the"}""",
            """{"prompt": [{"role": "user", "content": "hello"}], "chosen": [{"role": "assistant", "content": "the world"}], "rejected": [{"role": "assistant", "content": "hello"}]}""",
        ]);
        var tokenizer = Tokenizer();
        var report = new TokenizationReport();
        var pairs = new PreferenceTokenizer(tokenizer, ChatTemplates.Named("chatml", tokenizer)).TokenizeAll(PreferenceData.ReadPairs(path), report).ToList();
        using var batch = PreferenceCollator.Collate(pairs, tokenizer.PadTokenId!.Value);

        Assert.Equal(2, batch.PairCount);
        Assert.Equal(pairs.Sum(p => p.Chosen.Length + p.Rejected.Length), batch.CompletionMask().sum().item<long>());
        Assert.Equal(2, report.Kept);
    }
}

public sealed class PackingTests
{
    [Fact]
    public void A_packed_row_gives_each_sequence_the_hidden_states_it_has_alone()
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        using var model = Alignment.Tests.Models.TinyModels.Random(Alignment.Tests.Models.TinyModels.ConfigJson());
        var here = new SourceLocation("x", 1);
        TokenizedPair[] pairs = [new([1, 5, 9], [13, 22], [40], here), new([7], [3, 3, 60], [12, 2], here)];
        using PackedBatch packed = PreferenceCollator.Pack(pairs);

        TorchSharp.torch.Tensor hidden = model.Forward(packed.InputIds, packed.SegmentIds, packed.PositionIds)[0]; // [S, H]
        long offset = 0;
        foreach (int[] sequence in pairs.Select(p => p.Prompt.Concat(p.Chosen).ToArray()).Concat(pairs.Select(p => p.Prompt.Concat(p.Rejected).ToArray())))
        {
            TorchSharp.torch.Tensor alone = model.Forward(TorchSharp.torch.tensor(sequence.Select(i => (long)i).ToArray()).unsqueeze(0))[0];
            Assert.True(hidden.narrow(0, offset, sequence.Length).allclose(alone, rtol: 0, atol: 1e-5), $"sequence at {offset}");
            offset += sequence.Length;
        }
        Assert.Equal(offset, packed.InputIds.shape[1]);
        Assert.Equal(2 + 3 + 1 + 2, packed.SequenceMasks().sum().item<long>());
        Assert.Equal([0L, 1, 1, 0], packed.SequenceMasks()[0].narrow(0, 1, 4).to_type(TorchSharp.torch.ScalarType.Int64).data<long>().ToArray());
    }
}
