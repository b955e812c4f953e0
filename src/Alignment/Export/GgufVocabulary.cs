using System.Text.Json.Nodes;

namespace Alignment.Export;

/// <summary>
/// The tokenizer metadata llama.cpp reads (<c>tokenizer.ggml.*</c> and <c>tokenizer.chat_template</c>) from a Hugging
/// Face folder's byte-level BPE <c>tokenizer.json</c> and <c>tokenizer_config.json</c>, as llama.cpp's converter writes it:
/// model <c>gpt2</c>, the pre-tokenizer's llama.cpp name, one token per id up to the model's vocabulary size
/// (<c>[PADn]</c> for ids the tokenizer does not use), token types (1 normal, 3 control for special added tokens, 4
/// user-defined for other added tokens, 5 unused for padding), merges, and the special token ids.
/// </summary>
internal static class GgufVocabulary
{
    const int Normal = 1, Control = 3, UserDefined = 4, Unused = 5;

    /// <summary>
    /// llama.cpp's names for the pre-tokenizer regexes of the families we train, by whether the BPE model takes a word
    /// found whole in the vocabulary as one token (<c>ignore_merges</c>, Llama 3's setting). llama.cpp's <c>llama-bpe</c>
    /// always ignores merges; <c>smaug-bpe</c> splits with the same regex and applies them.
    /// </summary>
    static readonly Dictionary<(string Regex, bool IgnoreMerges), string> PreTokenizers = new()
    {
        [(@"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+", true)] = "llama-bpe",
        [(@"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+", false)] = "smaug-bpe",
        [(@"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+", false)] = "qwen2",
    };

    /// <summary>Adds the tokenizer's metadata for a model of <paramref name="vocabSize"/> token embeddings.</summary>
    /// <exception cref="NotSupportedException">The folder's tokenizer is not one llama.cpp can run as exported here (named).</exception>
    /// <exception cref="FileNotFoundException">The folder has no tokenizer.json.</exception>
    public static void Add(GgufWriter gguf, string folder, int vocabSize)
    {
        string path = Path.Combine(folder, "tokenizer.json");
        if (!File.Exists(path))
            throw new FileNotFoundException(File.Exists(Path.Combine(folder, "tokenizer.model"))
                ? $"'{folder}' has a SentencePiece tokenizer.model but no tokenizer.json; GGUF export reads tokenizer.json (transformers writes one with save_pretrained)."
                : $"'{folder}' has no tokenizer.json.", path);
        JsonObject json = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidDataException($"{path}: not a JSON object.");
        JsonObject model = json["model"] as JsonObject ?? throw new InvalidDataException($"{path}: no 'model'.");
        if ((string?)model["type"] != "BPE" || model["byte_fallback"]?.GetValue<bool>() == true)
            throw new NotSupportedException($"{path}: GGUF export writes byte-level BPE tokenizers (GPT-2, Llama 3, Qwen2, SmolLM); this one is " +
                $"{(string?)model["type"]}{(model["byte_fallback"]?.GetValue<bool>() == true ? " with byte fallback (SentencePiece-style)" : "")}.");
        string pre = PreTokenizer(json["pre_tokenizer"], model["ignore_merges"]?.GetValue<bool>() == true, path);

        var tokens = new string?[vocabSize];
        var types = new int[vocabSize];
        foreach (var (piece, id) in (model["vocab"] as JsonObject ?? throw new InvalidDataException($"{path}: no model.vocab.")))
            Place(tokens, types, id!.GetValue<int>(), piece, Normal, path);
        foreach (JsonNode? added in json["added_tokens"] as JsonArray ?? [])
            Place(tokens, types, added!["id"]!.GetValue<int>(), (string)added["content"]!, added["special"]?.GetValue<bool>() == true ? Control : UserDefined, path);
        for (int id = 0; id < vocabSize; id++)
            if (tokens[id] is null)
                (tokens[id], types[id]) = ($"[PAD{id}]", Unused);

        gguf.Add("tokenizer.ggml.model", "gpt2");
        gguf.Add("tokenizer.ggml.pre", pre);
        gguf.Add("tokenizer.ggml.tokens", tokens!);
        gguf.Add("tokenizer.ggml.token_type", types);
        gguf.Add("tokenizer.ggml.merges", Merges(model["merges"], path));

        JsonObject config = File.Exists(Path.Combine(folder, "tokenizer_config.json"))
            ? JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "tokenizer_config.json"))) as JsonObject ?? []
            : [];
        var ids = tokens.Select((token, id) => (token, id)).GroupBy(t => t.token!).ToDictionary(g => g.Key, g => g.First().id, StringComparer.Ordinal);
        foreach (var (field, key) in new[] { ("bos_token", "bos_token_id"), ("eos_token", "eos_token_id"), ("unk_token", "unknown_token_id"), ("pad_token", "padding_token_id") })
            if (TokenText(config[field]) is { } text && ids.TryGetValue(text, out int id))
                gguf.Add($"tokenizer.ggml.{key}", (uint)id);
        gguf.Add("tokenizer.ggml.add_bos_token", config["add_bos_token"]?.GetValue<bool>() == true);
        string? template = File.Exists(Path.Combine(folder, "chat_template.jinja")) ? File.ReadAllText(Path.Combine(folder, "chat_template.jinja"))
            : config["chat_template"] is JsonValue value ? value.GetValue<string>() : null;
        if (template is not null)
            gguf.Add("tokenizer.chat_template", template);
    }

    static void Place(string?[] tokens, int[] types, int id, string piece, int type, string path)
    {
        if (id < 0 || id >= tokens.Length)
            throw new NotSupportedException($"{path}: the token '{piece}' has id {id}, beyond the model's {tokens.Length} token embeddings.");
        (tokens[id], types[id]) = (piece, type);
    }

    /// <summary>llama.cpp's name for the pre-tokenizer (<c>tokenizer.ggml.pre</c>), recognised from tokenizer.json's <c>pre_tokenizer</c>.</summary>
    static string PreTokenizer(JsonNode? node, bool ignoreMerges, string path)
    {
        var parts = (string?)node?["type"] == "Sequence" ? (node["pretokenizers"] as JsonArray ?? []).ToList() : [node];
        string Type(int i) => (string?)parts[i]?["type"] ?? "";
        bool ByteLevel(int i, bool regex) => Type(i) == "ByteLevel" && (parts[i]?["use_regex"]?.GetValue<bool>() ?? true) == regex;
        if (parts.Count == 1 && ByteLevel(0, regex: true) && !ignoreMerges)
            return "gpt-2";
        if (parts.Count == 2 && Type(0) == "Digits" && parts[0]?["individual_digits"]?.GetValue<bool>() == true && ByteLevel(1, regex: true) && !ignoreMerges)
            return "smollm";
        if (parts.Count == 2 && Type(0) == "Split" && ByteLevel(1, regex: false) && (string?)parts[0]?["pattern"]?["Regex"] is { } regex
            && PreTokenizers.TryGetValue((regex, ignoreMerges), out string? name))
            return name;
        throw new NotSupportedException($"{path}: its pre_tokenizer ({node?.ToJsonString() ?? "none"}, ignore_merges {ignoreMerges}) is not one whose llama.cpp name is known " +
            "(GPT-2's byte level, Llama 3's or Qwen2's split regex, SmolLM's digits); llama.cpp would split text differently.");
    }

    /// <summary>Merges as "left right" strings; tokenizer.json writes them as such or as two-element arrays.</summary>
    static List<string> Merges(JsonNode? node, string path) =>
        (node as JsonArray ?? throw new InvalidDataException($"{path}: no model.merges.")).Select(merge => merge switch
        {
            JsonValue text => text.GetValue<string>(),
            JsonArray pair when pair.Count == 2 => $"{(string)pair[0]!} {(string)pair[1]!}",
            _ => throw new InvalidDataException($"{path}: a merge is neither a string nor a pair: {merge?.ToJsonString()}."),
        }).ToList();

    static string? TokenText(JsonNode? node) => node switch
    {
        JsonValue value => value.GetValue<string>(),
        JsonObject token => (string?)token["content"],
        _ => null,
    };
}
