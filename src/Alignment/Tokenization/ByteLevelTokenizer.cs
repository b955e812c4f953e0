using System.Text.Json.Nodes;

namespace Alignment.Tokenization;

/// <summary>Writes the tokenizer files of a model trained from scratch: byte-level BPE with no merges (one token per UTF-8 byte).</summary>
public static class ByteLevelTokenizer
{
    /// <summary>The ChatML markers and an end-of-text token, after the 256 byte tokens (ids 256, 257, 258).</summary>
    public static IReadOnlyList<string> ChatMlSpecialTokens { get; } = ["<|im_start|>", "<|im_end|>", "<|endoftext|>"];

    /// <summary>
    /// Writes <c>tokenizer.json</c> (byte-level BPE: the 256 bytes as GPT-2 maps them to characters, no merges, GPT-2
    /// pre-tokenization) and <c>tokenizer_config.json</c> (EOS <c>&lt;|im_end|&gt;</c>, pad <c>&lt;|endoftext|&gt;</c>, a ChatML
    /// chat template) into <paramref name="folder"/>. The vocabulary size is 256 + the special tokens.
    /// </summary>
    public static void WriteFolder(string folder, IReadOnlyList<string>? specialTokens = null)
    {
        specialTokens ??= ChatMlSpecialTokens;
        Directory.CreateDirectory(folder);
        var printable = Enumerable.Range('!', '~' - '!' + 1).Concat(Enumerable.Range('¡', '¬' - '¡' + 1)).Concat(Enumerable.Range('®', 'ÿ' - '®' + 1)).ToHashSet();
        var vocab = new JsonObject();
        for (int b = 0, extra = 0; b < 256; b++)
            vocab[((char)(printable.Contains(b) ? b : 256 + extra++)).ToString()] = b;
        var tokenizer = new JsonObject
        {
            ["added_tokens"] = new JsonArray(specialTokens.Select((s, i) => (JsonNode)new JsonObject { ["id"] = 256 + i, ["content"] = s, ["special"] = true }).ToArray()),
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = true },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel" },
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = new JsonArray() },
        };
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), tokenizer.ToJsonString());
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), new JsonObject
        {
            ["eos_token"] = "<|im_end|>",
            ["pad_token"] = "<|endoftext|>",
            ["chat_template"] = NamedChatTemplates.Sources["chatml"],
        }.ToJsonString());
    }
}
