using Alignment.Data;

namespace Alignment.Annotation.Tests;

public sealed class CandidateReaderTests : IDisposable
{
    readonly Workspace _work = new();

    public void Dispose() => _work.Dispose();

    [Fact]
    public void Pairs_lists_and_conversations_become_items()
    {
        string path = _work.File("c.jsonl",
            """{"prompt": "p", "completion_a": "a", "completion_b": "b"}""",
            "",
            """{"prompt": [{"role": "user", "content": "q"}], "completions": [[{"role": "assistant", "content": "x"}], [{"role": "assistant", "content": "y"}], [{"role": "assistant", "content": "z"}]]}""");
        var pairwise = CandidateReader.Read(path, AnnotationMode.Pairwise);
        Assert.Equal(4, pairwise.Count); // one pair, then all three pairs of three completions
        Assert.Equal([1L, 3, 3, 3], pairwise.Select(i => i.Line));
        Assert.Equal("user: q", pairwise[1].PromptText);
        Assert.Equal(("assistant: y", "assistant: z"), (pairwise[3].CompletionText(0), pairwise[3].CompletionText(1)));
        var rating = CandidateReader.Read(path, AnnotationMode.Rating);
        Assert.Equal([2, 3], rating.Select(i => i.Completions.Count));
    }

    [Theory]
    [InlineData("""{"prompt": "p", "completion_a": "a"}""", "c.jsonl:2", "completion_b")]
    [InlineData("""{"prompt": "p", "completions": ["only one"]}""", "c.jsonl:2", "two or more")]
    [InlineData("""{"prompt": "p", "completion_a": [{"role": "assistant", "content": "x"}], "completion_b": "b"}""", "c.jsonl:2", "must be a string")]
    [InlineData("""{"prompt": [{"role": "user", "content": "q"}], "completion_a": [{"role": "user", "content": "x"}], "completion_b": [{"role": "assistant", "content": "y"}]}""", "c.jsonl:2", "assistant messages")]
    [InlineData("not json", "c.jsonl:2", "not valid JSON")]
    [InlineData("""{"completion_a": "a", "completion_b": "b"}""", "c.jsonl:2", "prompt")]
    public void Malformed_lines_are_refused_with_file_line_and_field(string bad, string where, string what)
    {
        string path = _work.File("c.jsonl", """{"prompt": "p", "completion_a": "a", "completion_b": "b"}""", bad);
        var error = Assert.Throws<DataFormatException>(() => CandidateReader.Read(path, AnnotationMode.Pairwise));
        Assert.Contains(where, error.Message);
        Assert.Contains(what, error.Message);
    }
}
