using System.Text.Json.Nodes;

namespace Alignment.Export;

/// <summary>
/// The tokenizer metadata llama.cpp reads (<c>tokenizer.ggml.*</c> and <c>tokenizer.chat_template</c>) from a Hugging
/// Face folder, as llama.cpp's converter writes it: a SentencePiece <c>tokenizer.model</c> as model <c>llama</c> (when
/// there is no tokenizer.json or it is the same tokenizer with byte fallback); a byte-level BPE <c>tokenizer.json</c> as
/// model <c>gpt2</c>, with the pre-tokenizer's llama.cpp name, one token per id up to the model's vocabulary size
/// (<c>[PADn]</c> for ids the tokenizer does not use), token types (1 normal, 3 control for special added tokens, 4
/// user-defined for other added tokens, 5 unused for padding), merges, and the special token ids.
/// </summary>
internal static class GgufVocabulary
{
    const int Normal = 1, Control = 3, UserDefined = 4, Unused = 5;  // SentencePiece's own type numbers, which llama.cpp shares

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
        string path = Path.Combine(folder, "tokenizer.json"), sentencePiece = Path.Combine(folder, "tokenizer.model");
        JsonObject config = File.Exists(Path.Combine(folder, "tokenizer_config.json"))
            ? JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "tokenizer_config.json"))) as JsonObject ?? []
            : [];
        JsonObject? json = File.Exists(path) ? JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidDataException($"{path}: not a JSON object.") : null;
        JsonObject? model = json is null ? null : json["model"] as JsonObject ?? throw new InvalidDataException($"{path}: no 'model'.");
        bool byteFallback = model?["byte_fallback"]?.GetValue<bool>() == true;
        if (File.Exists(sentencePiece) && (model is null || byteFallback))
        {
            AddSentencePiece(gguf, sentencePiece, json, config, vocabSize);
            AddTemplate(gguf, folder, config);
            return;
        }
        if (json is null || model is null)
            throw new FileNotFoundException($"'{folder}' has neither tokenizer.json nor tokenizer.model.", path);
        if ((string?)model["type"] != "BPE")
            throw new NotSupportedException($"{path}: GGUF export writes BPE tokenizers (byte-level: GPT-2, Llama 3, Qwen2, SmolLM; byte fallback: Llama 2, " +
                $"Mistral, TinyLlama); this one is {(string?)model["type"]}.");
        if (byteFallback)
        {
            AddByteFallback(gguf, json, model, path, config, vocabSize);
            AddTemplate(gguf, folder, config);
            return;
        }
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

        AddSpecialIds(gguf, tokens!, config, json, fallback: default);
        AddTemplate(gguf, folder, config);
    }

    /// <summary>
    /// A SentencePiece tokenizer.model as llama.cpp's <c>llama</c> tokenizer: its pieces, scores and types (the same
    /// numbers in both), then tokenizer.json's added tokens beyond them (score −1000), then <c>[PADn]</c>; the dummy
    /// prefix and whitespace settings of its normaliser.
    /// </summary>
    static void AddSentencePiece(GgufWriter gguf, string path, JsonObject? json, JsonObject config, int vocabSize)
    {
        var file = Tokenization.SentencePieceFile.Read(path);
        if (file.ModelType != 2)
            throw new NotSupportedException($"{path}: SentencePiece model type {file.ModelType} is not BPE; GGUF export writes BPE SentencePiece tokenizers (Llama 2, Mistral, TinyLlama).");
        if (file.Pieces.Count > vocabSize)
            throw new NotSupportedException($"{path}: {file.Pieces.Count} pieces, more than the model's {vocabSize} token embeddings.");
        var tokens = new string?[vocabSize];
        var scores = new float[vocabSize];
        var types = new int[vocabSize];
        for (int id = 0; id < file.Pieces.Count; id++)
            (tokens[id], scores[id], types[id]) = file.Pieces[id];
        foreach (JsonNode? added in json?["added_tokens"] as JsonArray ?? [])
        {
            int id = added!["id"]!.GetValue<int>();
            if (id >= file.Pieces.Count)
            {
                Place(tokens, types, id, (string)added["content"]!, added["special"]?.GetValue<bool>() == true ? Control : UserDefined, path);
                scores[id] = -1000;
            }
        }
        for (int id = 0; id < vocabSize; id++)
            if (tokens[id] is null)
                (tokens[id], scores[id], types[id]) = ($"[PAD{id}]", -1000, Unused);
        gguf.Add("tokenizer.ggml.model", "llama");
        gguf.Add("tokenizer.ggml.tokens", tokens!);
        gguf.Add("tokenizer.ggml.scores", scores);
        gguf.Add("tokenizer.ggml.token_type", types);
        gguf.Add("tokenizer.ggml.add_space_prefix", file.AddDummyPrefix);
        gguf.Add("tokenizer.ggml.remove_extra_whitespaces", file.RemoveExtraWhitespaces);
        AddSpecialIds(gguf, tokens!, config, json, (file.BosId, file.EosId, file.UnknownId, file.PadId));
    }

    /// <summary>
    /// A tokenizer.json BPE with byte fallback (Llama 2, Mistral, TinyLlama without their tokenizer.model) as llama.cpp's
    /// <c>llama</c> tokenizer, which merges the adjacent pair of highest score: each merge's result scores minus its rank,
    /// so the highest score is the first merge, as Hugging Face applies them; <c>&lt;0xXX&gt;</c> pieces are byte tokens,
    /// the unknown token unknown, added tokens control or user-defined; the dummy prefix is the normaliser's
    /// <c>Prepend ▁</c> or a Metaspace pre-tokenizer that prepends.
    /// </summary>
    static void AddByteFallback(GgufWriter gguf, JsonObject json, JsonObject model, string path, JsonObject config, int vocabSize)
    {
        if (json["pre_tokenizer"] is JsonObject pre && (string?)pre["type"] != "Metaspace")
            throw new NotSupportedException($"{path}: a byte fallback BPE with the pre-tokenizer {pre.ToJsonString()}; llama.cpp's llama tokenizer splits nothing before merging.");
        const int Unknown = 2, Byte = 6;
        var tokens = new string?[vocabSize];
        var scores = new float[vocabSize];
        var types = new int[vocabSize];
        string? unknown = (string?)model["unk_token"];
        foreach (var (piece, id) in (model["vocab"] as JsonObject ?? throw new InvalidDataException($"{path}: no model.vocab.")))
        {
            bool isByte = piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece.EndsWith('>');
            Place(tokens, types, id!.GetValue<int>(), piece, piece == unknown ? Unknown : isByte ? Byte : Normal, path);
        }
        var merges = Merges(model["merges"], path);
        var ids = tokens.Select((token, id) => (token, id)).Where(t => t.token is not null).GroupBy(t => t.token!).ToDictionary(g => g.Key, g => g.First().id, StringComparer.Ordinal);
        for (int rank = merges.Count - 1; rank >= 0; rank--) // the first merge of a result wins
            if (ids.TryGetValue(merges[rank].Replace(" ", "", StringComparison.Ordinal), out int id))
                scores[id] = -rank;
        foreach (JsonNode? added in json["added_tokens"] as JsonArray ?? [])
        {
            int id = added!["id"]!.GetValue<int>();
            if (tokens.ElementAtOrDefault(id) is null || types[id] == Normal && (string)added["content"]! != tokens[id])
                Place(tokens, types, id, (string)added["content"]!, added["special"]?.GetValue<bool>() == true ? Control : UserDefined, path);
            else if (added["special"]?.GetValue<bool>() == true && types[id] == Normal)
                types[id] = Control;
            scores[id] = types[id] == Normal ? scores[id] : 0;
        }
        for (int id = 0; id < vocabSize; id++)
            if (tokens[id] is null)
                (tokens[id], scores[id], types[id]) = ($"[PAD{id}]", -1000, Unused);
        bool prepend = Flatten(json["normalizer"], "normalizers").Any(n => (string?)n["type"] == "Prepend" && (string?)n["prepend"] == "▁")
            || json["pre_tokenizer"] is JsonObject metaspace && ((string?)metaspace["prepend_scheme"] is "always" or "first" || metaspace["add_prefix_space"]?.GetValue<bool>() == true);
        gguf.Add("tokenizer.ggml.model", "llama");
        gguf.Add("tokenizer.ggml.tokens", tokens!);
        gguf.Add("tokenizer.ggml.scores", scores);
        gguf.Add("tokenizer.ggml.token_type", types);
        gguf.Add("tokenizer.ggml.add_space_prefix", prepend);
        gguf.Add("tokenizer.ggml.remove_extra_whitespaces", false);
        AddSpecialIds(gguf, tokens!, config, json, fallback: (-1, -1, unknown is not null && ids.TryGetValue(unknown, out int unk) ? unk : -1, -1));
    }

    static IEnumerable<JsonNode> Flatten(JsonNode? node, string list) =>
        node is null ? [] : (string?)node["type"] == "Sequence" ? (node[list] as JsonArray ?? []).SelectMany(n => Flatten(n, list)) : [node];

    /// <summary>
    /// BOS/EOS/UNK/PAD ids from tokenizer_config.json's tokens (else SentencePiece's own ids), and
    /// <c>add_bos_token</c> as transformers decides it: tokenizer_config.json's flag, else whether tokenizer.json's
    /// post-processor starts every sequence with the BOS token, else (a tokenizer.model alone) LlamaTokenizer's true.
    /// </summary>
    static void AddSpecialIds(GgufWriter gguf, string[] tokens, JsonObject config, JsonObject? json, (int Bos, int Eos, int Unk, int Pad) fallback)
    {
        var ids = tokens.Select((token, id) => (token, id)).GroupBy(t => t.token).ToDictionary(g => g.Key, g => g.First().id, StringComparer.Ordinal);
        bool sentencePiece = fallback != default;
        foreach (var (field, key, own) in new[] { ("bos_token", "bos_token_id", fallback.Bos), ("eos_token", "eos_token_id", fallback.Eos),
                     ("unk_token", "unknown_token_id", fallback.Unk), ("pad_token", "padding_token_id", fallback.Pad) })
        {
            int? id = TokenText(config[field]) is { } text && ids.TryGetValue(text, out int found) ? found : sentencePiece && own >= 0 && own < tokens.Length ? own : null;
            if (id is { } value)
                gguf.Add($"tokenizer.ggml.{key}", (uint)value);
        }
        string? bos = TokenText(config["bos_token"]);
        bool addBos = config["add_bos_token"] is JsonValue flag ? flag.GetValue<bool>()
            : json is not null ? bos is not null && StartsWithSpecial(json["post_processor"]) == bos
            : sentencePiece; // a tokenizer.model alone: LlamaTokenizer's default
        gguf.Add("tokenizer.ggml.add_bos_token", addBos);
    }

    /// <summary>The special token a TemplateProcessing post-processor (alone or in a sequence) puts first, or null.</summary>
    static string? StartsWithSpecial(JsonNode? processor) => (string?)processor?["type"] switch
    {
        "TemplateProcessing" => (string?)(processor["single"] as JsonArray)?.FirstOrDefault()?["SpecialToken"]?["id"],
        "Sequence" => (processor["processors"] as JsonArray ?? []).Select(StartsWithSpecial).FirstOrDefault(s => s is not null),
        _ => null,
    };

    static void AddTemplate(GgufWriter gguf, string folder, JsonObject config)
    {
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
