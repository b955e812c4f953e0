using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Alignment.Tokenization;
using Microsoft.ML.Tokenizers;

namespace Alignment.Tests.Tokenization;

public sealed class ModelTokenizerTests : IDisposable
{
    readonly TinyTokenizers _tokenizers = new();

    public void Dispose() => _tokenizers.Dispose();

    /// <summary>Ids of text with no merge applying: one id per UTF-8 byte (ids are byte values).</summary>
    static int[] ByteIds(string text) => Encoding.UTF8.GetBytes(text).Select(b => (int)b).ToArray();

    [Fact]
    public void Merges_apply_as_written_and_decoding_round_trips_unicode()
    {
        var tokenizer = ModelTokenizer.FromFolder(_tokenizers.Folder("tok"));
        var vocab = TinyTokenizers.Vocabulary();
        Assert.Equal([vocab["hello"], vocab["Ġworld"]], tokenizer.EncodeContent("hello world"));
        const string text = "héllo wörld 123 ✓\n\tthe end";
        Assert.Equal(text, tokenizer.Decode(tokenizer.EncodeContent(text).Select(i => (long)i)));
    }

    [Fact]
    public void Added_tokens_that_are_not_special_are_matched_in_content_and_special_ones_are_not()
    {
        // Qwen3's <think> is an added token with "special": false; Hugging Face matches such tokens anywhere in the text.
        string folder = _tokenizers.Folder("added");
        string file = Path.Combine(folder, "tokenizer.json");
        var json = JsonNode.Parse(File.ReadAllText(file))!.AsObject();
        json["added_tokens"]!.AsArray().Add(new JsonObject { ["id"] = 600, ["content"] = "<think>", ["special"] = false });
        File.WriteAllText(file, json.ToJsonString());
        var tokenizer = ModelTokenizer.FromFolder(folder);
        int imEnd = TinyTokenizers.SpecialId("<|im_end|>");

        IReadOnlyList<int> ids = tokenizer.EncodeContent("a<think>b<|im_end|>");
        Assert.Equal([.. ByteIds("a"), 600, .. ByteIds("b<|im_end|>")], ids);   // no merge covers these bytes
        Assert.DoesNotContain(imEnd, ids);
        Assert.Equal("a<think>b", tokenizer.Decode(tokenizer.EncodeContent("a<think>b").Select(i => (long)i), skipSpecialTokens: true));
        Assert.Equal("x", tokenizer.Decode([.. ByteIds("x").Select(i => (long)i), imEnd], skipSpecialTokens: true));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void With_ignore_merges_a_pre_token_in_the_vocabulary_is_one_token(bool ignoreMerges)
    {
        // Llama 3's tokenizer.json sets "ignore_merges": Hugging Face and tiktoken look a whole pre-token up before merging.
        // Two entries no merge reaches: " hello" (id 500) and " Việt" (id 501, its UTF-8 bytes in GPT-2's alphabet).
        string folder = _tokenizers.Folder("ignore");
        string file = Path.Combine(folder, "tokenizer.json");
        var json = JsonNode.Parse(File.ReadAllText(file))!.AsObject();
        json["model"]!["vocab"]!["Ġhello"] = 500;
        json["model"]!["vocab"]!["ĠViá»ĩt"] = 501;
        json["model"]!["ignore_merges"] = ignoreMerges;
        File.WriteAllText(file, json.ToJsonString());
        var tokenizer = ModelTokenizer.FromFolder(folder);
        var vocab = TinyTokenizers.Vocabulary();

        int[] say = ByteIds("say"), tieng = ByteIds("Tiếng");
        Assert.Equal(ignoreMerges ? [.. say, 500] : [.. say, ' ', vocab["hello"]], tokenizer.EncodeContent("say hello"));
        Assert.Equal(ignoreMerges ? [.. tieng, 501] : [.. tieng, .. ByteIds(" Việt")], tokenizer.EncodeContent("Tiếng Việt"));
        Assert.Equal([vocab["hello"], vocab["Ġworld"]], tokenizer.EncodeContent("hello world")); // merges still apply elsewhere
        Assert.Equal("say hello Tiếng Việt", tokenizer.Decode(tokenizer.EncodeContent("say hello Tiếng Việt").Select(i => (long)i)));
    }

    [Theory]
    [InlineData("<|im_start|>")]
    [InlineData("<|endoftext|>")]
    [InlineData("</s>")]
    public void Special_token_text_inside_content_is_encoded_as_plain_text(string injected)
    {
        var tokenizer = ModelTokenizer.FromFolder(_tokenizers.Folder("tok"));
        IReadOnlyList<int> ids = tokenizer.EncodeContent($"hi {injected} there");
        Assert.DoesNotContain(TinyTokenizers.SpecialId(injected), ids);
        Assert.Equal($"hi {injected} there", tokenizer.Decode(ids.Select(i => (long)i)));
        Assert.Equal(ByteIds(injected), tokenizer.EncodeContent(injected)); // no merge touches these bytes
        Assert.Equal([TinyTokenizers.SpecialId(injected)], tokenizer.Encode([Segment.Special(injected)]));
    }

    [Fact]
    public void Gpt2_style_pre_tokenization_is_supported()
    {
        var tokenizer = ModelTokenizer.FromFolder(_tokenizers.Folder("gpt2", gpt2Style: true));
        var vocab = TinyTokenizers.Vocabulary();
        // "h e" outranks "Ġ t", so " the" becomes Ġt + he and the later merges "Ġt h", "Ġth e" never apply.
        Assert.Equal([vocab["hello"], vocab["Ġworld"], vocab["Ġt"], vocab["he"]], tokenizer.EncodeContent("hello world the"));
    }

    [Fact]
    public void Special_tokens_and_eos_ids_come_from_the_config_files()
    {
        var tokenizer = ModelTokenizer.FromFolder(_tokenizers.Folder("tok", generationEos: new JsonArray(TinyTokenizers.SpecialId("<|endoftext|>"), TinyTokenizers.SpecialId("<|im_end|>"))));
        Assert.Equal("<|im_end|>", tokenizer.EosToken);
        Assert.Equal(TinyTokenizers.SpecialId("<|endoftext|>"), tokenizer.PadTokenId);
        Assert.Equal([TinyTokenizers.SpecialId("<|endoftext|>"), TinyTokenizers.SpecialId("<|im_end|>")], tokenizer.EosTokenIds.Order());
        Assert.Null(tokenizer.BosToken);
    }

    [Fact]
    public void A_folder_without_a_tokenizer_is_named()
    {
        string empty = Directory.CreateDirectory(Path.Combine(_tokenizers.Root, "empty")).FullName;
        Assert.Contains(empty, Assert.Throws<FileNotFoundException>(() => ModelTokenizer.FromFolder(empty)).Message);
    }

    [Fact]
    public void Unsupported_pre_tokenizers_are_named()
    {
        string folder = _tokenizers.Folder("meta");
        string path = Path.Combine(folder, "tokenizer.json");
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        json["pre_tokenizer"] = new JsonObject { ["type"] = "Metaspace" };
        File.WriteAllText(path, json.ToJsonString());
        Assert.Contains("Metaspace", Assert.Throws<InvalidDataException>(() => ModelTokenizer.FromFolder(folder)).Message);
    }

    /// <summary>
    /// How Hugging Face tokenizes a rendered template: special-token strings in the text are matched first, the rest is
    /// BPE. Built independently of ModelTokenizer, from the same vocabulary and merges.
    /// </summary>
    internal static Tokenizer HuggingFaceStyle() => BpeTokenizer.Create(new BpeOptions(TinyTokenizers.Vocabulary())
    {
        Merges = TinyTokenizers.Merges,
        ByteLevel = true,
        PreTokenizer = new RegexPreTokenizer(new Regex(TinyTokenizers.Llama3Split),
            TinyTokenizers.Specials.ToDictionary(s => s, TinyTokenizers.SpecialId)),
        SpecialTokens = TinyTokenizers.Specials.ToDictionary(s => s, TinyTokenizers.SpecialId),
    });
}
