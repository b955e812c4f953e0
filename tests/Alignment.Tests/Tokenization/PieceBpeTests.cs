using System.Text.Json.Nodes;
using Alignment.Tokenization;

namespace Alignment.Tests.Tokenization;

/// <summary>
/// SentencePiece BPE (tokenizer.model), Hugging Face's byte-fallback BPE (tokenizer.json) and, beside them, byte-level
/// BPE (GPT-2) on real files, against the ids of independent implementations (Fixtures/README.md says which).
/// </summary>
public sealed class PieceBpeTests
{
    static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Tokenization", "Fixtures", name);

    public static TheoryData<string, string> Fixtures => new()
    {
        { "sentencepiece-bpe", "tokenizer.model (SentencePiece)" },
        { "mistral-7b", "tokenizer.json (BPE, byte fallback)" },
        { "gpt2", "tokenizer.json (BPE)" },
    };

    static IEnumerable<(string Text, int[] Ids)> Expected(string fixture) =>
        File.ReadLines(Path.Combine(Fixture(fixture), "expected.jsonl")).Select(line => JsonNode.Parse(line)!)
            .Select(node => (node["text"]!.GetValue<string>(), node["ids"]!.AsArray().Select(id => id!.GetValue<int>()).ToArray()));

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Ids_equal_the_reference_implementations_on_repeated_runs_and_hard_strings(string fixture, string kind)
    {
        var tokenizer = ModelTokenizer.FromFolder(Fixture(fixture));
        Assert.Equal(kind, tokenizer.Kind);
        var wrong = Expected(fixture).Where(e => !tokenizer.EncodeContent(e.Text).SequenceEqual(e.Ids))
            .Select(e => $"{System.Text.Json.JsonSerializer.Serialize(e.Text)}: expected [{string.Join(", ", e.Ids)}], got [{string.Join(", ", tokenizer.EncodeContent(e.Text))}]").ToList();
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Decoding_gives_back_the_text(string fixture, string kind)
    {
        var tokenizer = ModelTokenizer.FromFolder(Fixture(fixture));
        Assert.Equal(kind, tokenizer.Kind);
        foreach (var (text, ids) in Expected(fixture))
            Assert.Equal(text, tokenizer.Decode(ids.Select(i => (long)i)));
    }

    [Fact]
    public void Mistral_instruction_markers_are_the_ids_Mistral_documents()
    {
        var tokenizer = ModelTokenizer.FromFolder(Fixture("mistral-7b"));
        Assert.Equal([733, 16289, 28793], tokenizer.EncodeContent("[INST]"));
        Assert.Equal([1, 733, 16289, 28793, 22557, 733, 28748, 16289, 28793],
            tokenizer.Encode([Segment.Special("<s>"), Segment.Content("[INST] Hello [/INST]")]));
    }

    [Fact]
    public void Special_token_text_in_content_stays_text()
    {
        var tokenizer = ModelTokenizer.FromFolder(Fixture("mistral-7b"));
        IReadOnlyList<int> ids = tokenizer.EncodeContent("a </s> b <s>");
        Assert.DoesNotContain(1, ids);
        Assert.DoesNotContain(2, ids);
        Assert.Equal("a </s> b <s>", tokenizer.Decode(ids.Select(i => (long)i)));
    }
}
