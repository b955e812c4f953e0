using System.Text.Json.Nodes;
using Alignment.Tokenization;

namespace Alignment.Tests.Tokenization;

/// <summary>Hand-made byte-fallback tokenizer.json files: each expected id list is worked out from the merge ranks by hand.</summary>
public sealed class PieceBpeJsonTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("alignment-piece-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    // ids: <unk> 0, <s> 1, </s> 2, ▁ 3, a 4, b 5, ▁a 6, ab 7, ▁ab 8, aa 9, a▁ 10, then the 256 byte pieces from 11.
    static readonly string[] Pieces = ["<unk>", "<s>", "</s>", "▁", "a", "b", "▁a", "ab", "▁ab", "aa", "a▁"];
    static readonly string[] Merges = ["▁ a", "a b", "▁a b", "a a", "a ▁"];

    string Folder(JsonNode? normalizer, JsonNode? preTokenizer, bool byteFallback = true)
    {
        string folder = Path.Combine(_root, Guid.NewGuid().ToString("n"));
        Directory.CreateDirectory(folder);
        var vocab = new JsonObject();
        for (int i = 0; i < Pieces.Length; i++)
            vocab[Pieces[i]] = i;
        for (int b = 0; b < 256; b++)
            vocab[$"<0x{b:X2}>"] = Pieces.Length + b;   // 11 + b
        var json = new JsonObject
        {
            ["added_tokens"] = new JsonArray(new JsonObject { ["id"] = 1, ["content"] = "<s>", ["special"] = true }, new JsonObject { ["id"] = 2, ["content"] = "</s>", ["special"] = true }),
            ["normalizer"] = normalizer,
            ["pre_tokenizer"] = preTokenizer,
            ["decoder"] = new JsonObject { ["type"] = "Sequence", ["decoders"] = new JsonArray(new JsonObject { ["type"] = "Strip", ["content"] = " ", ["start"] = 1, ["stop"] = 0 }) },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["unk_token"] = "<unk>", ["fuse_unk"] = true, ["byte_fallback"] = byteFallback,
                ["vocab"] = vocab, ["merges"] = new JsonArray(Merges.Select(m => (JsonNode)m).ToArray()),
            },
        };
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), json.ToJsonString());
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"bos_token": "<s>", "eos_token": "</s>"}""");
        return folder;
    }

    static JsonObject PrependReplace => new()
    {
        ["type"] = "Sequence",
        ["normalizers"] = new JsonArray(new JsonObject { ["type"] = "Prepend", ["prepend"] = "▁" },
            new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = " " }, ["content"] = "▁" }),
    };

    static JsonObject Metaspace(string scheme, bool split) => new() { ["type"] = "Metaspace", ["replacement"] = "▁", ["prepend_scheme"] = scheme, ["split"] = split };

    [Fact]
    public void Legacy_normaliser_prefixes_every_run_even_one_that_starts_with_a_space()
    {
        var tokenizer = ModelTokenizer.FromFolder(Folder(PrependReplace, null));
        Assert.Equal("tokenizer.json (BPE, byte fallback)", tokenizer.Kind);
        Assert.Equal([8, 8], tokenizer.EncodeContent("ab ab"));          // ▁ab ▁ab: ▁+a (rank 0), then ▁a+b (rank 2)
        Assert.Equal([3, 8], tokenizer.EncodeContent(" ab"));            // ▁▁ab
        Assert.Equal([1, 8], tokenizer.Encode([Segment.Special("<s>"), Segment.Content("ab")]));
    }

    [Fact]
    public void Metaspace_first_prefixes_only_the_run_that_opens_the_sequence()
    {
        var tokenizer = ModelTokenizer.FromFolder(Folder(null, Metaspace("first", split: false)));
        Assert.Equal([8], tokenizer.EncodeContent("ab"));
        Assert.Equal([1, 7], tokenizer.Encode([Segment.Special("<s>"), Segment.Content("ab")]));
        Assert.Equal([8], tokenizer.EncodeContent(" ab"));               // already starts with ▁: not doubled
    }

    [Fact]
    public void Metaspace_always_prefixes_every_run()
    {
        var tokenizer = ModelTokenizer.FromFolder(Folder(null, Metaspace("always", split: true)));
        Assert.Equal([1, 8], tokenizer.Encode([Segment.Special("<s>"), Segment.Content("ab")]));
    }

    [Fact]
    public void Equal_ranks_merge_leftmost_first_and_merges_never_cross_a_split_word()
    {
        var joined = ModelTokenizer.FromFolder(Folder(null, Metaspace("never", split: false)));
        Assert.Equal([9, 4], joined.EncodeContent("aaa"));                // (a a) at 0 and at 1 tie: the left one merges
        Assert.Equal([4, 8], joined.EncodeContent("a ab"));               // a▁ab: ▁+a (rank 0) before a+▁ (rank 4), then ▁a+b
        Assert.Equal([10, 5], joined.EncodeContent("a b"));               // a▁b: a+▁ is the only merge
        var split = ModelTokenizer.FromFolder(Folder(null, Metaspace("never", split: true)));
        Assert.Equal([4, 3, 5], split.EncodeContent("a b"));              // words a | ▁b: a+▁ would cross them
    }

    [Fact]
    public void Characters_outside_the_vocabulary_fall_back_to_bytes_or_one_fused_unknown()
    {
        var bytes = ModelTokenizer.FromFolder(Folder(PrependReplace, null));
        Assert.Equal([3, 11 + 0xC3, 11 + 0xA9, 4], bytes.EncodeContent("éa"));   // é is C3 A9 in UTF-8
        Assert.Equal("éa", bytes.Decode(bytes.EncodeContent("éa").Select(i => (long)i)));
        var unknown = ModelTokenizer.FromFolder(Folder(PrependReplace, null, byteFallback: false));
        Assert.Equal([3, 0, 4], unknown.EncodeContent("éüa"));
    }

    [Fact]
    public void An_unsupported_pre_tokenizer_is_named()
    {
        var error = Assert.Throws<InvalidDataException>(() => ModelTokenizer.FromFolder(Folder(null, new JsonObject { ["type"] = "Whitespace" })));
        Assert.Contains("tokenizer.json", error.Message);
        Assert.Contains("Whitespace", error.Message);
    }
}
