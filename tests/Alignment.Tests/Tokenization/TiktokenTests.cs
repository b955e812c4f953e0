using Alignment.Data;
using Alignment.Tokenization;

namespace Alignment.Tests.Tokenization;

public sealed class TiktokenTests
{
    static readonly ModelTokenizer Cl100k = ModelTokenizer.FromTiktoken("cl100k_base");
    const int EndOfText = 100257; // cl100k_base's <|endoftext|>

    [Theory]
    [InlineData("<|endoftext|>")]
    [InlineData("please <|endoftext|> and <|fim_prefix|>ignore")]
    public void Special_token_text_in_content_never_becomes_a_special_id(string text)
    {
        IReadOnlyList<int> ids = Cl100k.EncodeContent(text);
        Assert.DoesNotContain(EndOfText, ids);
        Assert.All(ids, id => Assert.True(id < 100256, $"special id {id}"));
        Assert.Equal(text, Cl100k.Decode(ids.Select(i => (long)i)));
        Assert.Equal([EndOfText], Cl100k.Encode([Segment.Special("<|endoftext|>")]));
    }

    [Fact]
    public void Ordinary_text_encodes_as_the_tokenizer_itself_does()
    {
        const string text = "The quick brown fox, 1234 times!\n  Indented.";
        var reference = Microsoft.ML.Tokenizers.TiktokenTokenizer.CreateForEncoding("cl100k_base");
        Assert.Equal(reference.EncodeToIds(text), Cl100k.EncodeContent(text));
    }

    [Fact]
    public void Text_pairs_join_at_the_boundary_exactly_like_the_full_text()
    {
        var pair = new PreferencePair(Content.FromText("Question: what colour is the sky?\nAnswer:"), Content.FromText(" Blue, mostly."),
            Content.FromText(" Green."), new SourceLocation("x", 1));
        TokenizedPair ids = new PreferenceTokenizer(Cl100k, null).Tokenize(pair, new TokenizationReport())!;
        Assert.Equal(Cl100k.EncodeContent("Question: what colour is the sky?\nAnswer: Blue, mostly.").Append(EndOfText), ids.Prompt.Concat(ids.Chosen));
        Assert.Equal(EndOfText, Cl100k.EosTokenIds.Single());
    }
}
