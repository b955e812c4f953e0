using System.Text.Json.Nodes;

namespace Alignment.Tests.Tokenization;

/// <summary>A small but real byte-level BPE tokenizer folder (tokenizer.json + tokenizer_config.json) written for the tests.</summary>
internal sealed class TinyTokenizers : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("alignment-tok-").FullName;

    public void Dispose() => Directory.Delete(Root, recursive: true);

    /// <summary>GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to 256 + n.</summary>
    public static char[] ByteToChar()
    {
        var printable = Enumerable.Range('!', '~' - '!' + 1).Concat(Enumerable.Range('¡', '¬' - '¡' + 1)).Concat(Enumerable.Range('®', 'ÿ' - '®' + 1)).ToList();
        var map = new char[256];
        int extra = 0;
        for (int b = 0; b < 256; b++)
            map[b] = printable.Contains(b) ? (char)b : (char)(256 + extra++);
        return map;
    }

    /// <summary>The ChatML chat template with its generation prompt (as Qwen's and SmolLM's folders ship it).</summary>
    public const string ChatMlTemplate =
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    public static readonly string[] Merges = ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "Ġwor l", "Ġworl d", "Ġ t", "Ġt h", "Ġth e"];

    public static readonly string[] Specials =
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<s>", "</s>"];

    /// <summary>Vocabulary: the 256 byte characters (ids 0..255 in byte order), then each merge's result.</summary>
    public static Dictionary<string, int> Vocabulary()
    {
        char[] map = ByteToChar();
        var vocab = new Dictionary<string, int>();
        for (int b = 0; b < 256; b++)
            vocab[map[b].ToString()] = b;
        foreach (string merge in Merges)
            vocab.TryAdd(merge.Replace(" ", ""), vocab.Count);
        return vocab;
    }

    public static int SpecialId(string token) => 256 + Merges.Length + Array.IndexOf(Specials, token);

    public const string Llama3Split = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    public string Folder(string name, string? chatTemplate = null, bool gpt2Style = false, JsonArray? generationEos = null)
    {
        string folder = Path.Combine(Root, name);
        Directory.CreateDirectory(folder);
        JsonNode preTokenizer = gpt2Style
            ? new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = true }
            : new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = Llama3Split }, ["behavior"] = "Isolated", ["invert"] = false },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = false }),
            };
        var tokenizer = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(Specials.Select(s => (JsonNode)new JsonObject { ["id"] = SpecialId(s), ["content"] = s, ["special"] = true }).ToArray()),
            ["normalizer"] = null,
            ["pre_tokenizer"] = preTokenizer,
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel" },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["vocab"] = new JsonObject(Vocabulary().Select(kv => new KeyValuePair<string, JsonNode?>(kv.Key, kv.Value))),
                ["merges"] = new JsonArray(Merges.Select(m => (JsonNode)m).ToArray()),
            },
        };
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), tokenizer.ToJsonString());
        var config = new JsonObject { ["eos_token"] = "<|im_end|>", ["pad_token"] = "<|endoftext|>", ["bos_token"] = null };
        if (chatTemplate is not null)
            config["chat_template"] = chatTemplate;
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), config.ToJsonString());
        if (generationEos is not null)
            File.WriteAllText(Path.Combine(folder, "generation_config.json"), new JsonObject { ["eos_token_id"] = generationEos }.ToJsonString());
        return folder;
    }
}
