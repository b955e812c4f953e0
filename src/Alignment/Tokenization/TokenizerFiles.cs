using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Alignment.Tokenization;

/// <summary>
/// Reads a Hugging Face model folder's tokenizer files: <c>tokenizer.json</c> (byte-level BPE: vocabulary, merges,
/// pre-tokenizers, normalizers, added tokens) or <c>tokenizer.model</c> (SentencePiece), with special tokens from
/// <c>tokenizer_config.json</c>, end-of-sequence ids from <c>generation_config.json</c>, and the chat template.
/// </summary>
internal static class TokenizerFiles
{
    // The GPT-2 pre-tokenization pattern (ByteLevel with use_regex = true).
    const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    /// <summary>The folder's tokenizer; see <see cref="ModelTokenizer.FromFolder"/>.</summary>
    public static ModelTokenizer Load(string folder)
    {
        string json = Path.Combine(folder, "tokenizer.json"), model = Path.Combine(folder, "tokenizer.model");
        JsonObject config = ReadJson(Path.Combine(folder, "tokenizer_config.json")) ?? new JsonObject();
        JsonObject? tokenizerJson = File.Exists(json) ? ReadJson(json) : null;
        string? modelType = tokenizerJson?["model"]?["type"]?.GetValue<string>();

        // Every added token, and whether either file calls it special (the others are matched in content too).
        var special = new Dictionary<string, int>(StringComparer.Ordinal);
        var isSpecial = new Dictionary<string, bool>(StringComparer.Ordinal);
        void Add(string text, int id, JsonNode? flag)
        {
            special[text] = id;
            isSpecial[text] = isSpecial.GetValueOrDefault(text) || flag is not JsonValue value || !value.TryGetValue(out bool b) || b;
        }
        foreach (JsonNode? added in tokenizerJson?["added_tokens"]?.AsArray() ?? [])
            Add(added!["content"]!.GetValue<string>(), added["id"]!.GetValue<int>(), added["special"]);
        foreach (var (id, node) in config["added_tokens_decoder"]?.AsObject() ?? [])
            if (int.TryParse(id, out int value) && node?["content"]?.GetValue<string>() is { } text)
                Add(text, value, node["special"]);
        IContentEncoder content;
        string kind;
        if (tokenizerJson is not null && (modelType == "BPE" || !File.Exists(model)))
        {
            if (modelType != "BPE")
                throw new InvalidDataException($"'{json}': model type '{modelType}' is not supported; BPE (byte-level, or with byte fallback) is.");
            var vocabulary = ReadVocabulary(tokenizerJson, json);
            List<(string Left, string Right)> merges = ReadMerges(tokenizerJson, json);
            if (IsByteLevel(tokenizerJson))
            {
                IReadOnlyDictionary<string, int>? wholePreTokens = tokenizerJson["model"]?["ignore_merges"] is JsonValue ignore
                    && ignore.TryGetValue(out bool ignoreMerges) && ignoreMerges ? vocabulary.ToDictionary(StringComparer.Ordinal) : null;
                content = new PreTokenizedEncoder(BuildByteLevel(tokenizerJson, json, vocabulary, merges), wholePreTokens, []);
                kind = "tokenizer.json (BPE)";
            }
            else
            {
                content = PieceBpeJson.Build(tokenizerJson, json, vocabulary, merges);
                kind = "tokenizer.json (BPE, byte fallback)";
            }
        }
        else if (File.Exists(model))
        {
            SentencePieceFile sentencePiece = SentencePieceFile.Read(model);
            foreach (var (piece, id) in sentencePiece.SpecialPieces())
                special.TryAdd(piece, id);
            content = sentencePiece.CreateEncoder(model, special.Keys.ToHashSet());
            kind = "tokenizer.model (SentencePiece)";
        }
        else
        {
            throw new FileNotFoundException($"'{folder}' has neither tokenizer.json nor tokenizer.model.", json);
        }

        string? Token(string key) => config[key] switch
        {
            JsonValue v when v.TryGetValue(out string? s) => s,
            JsonObject o => o["content"]?.GetValue<string>(),
            _ => null,
        };
        string? bos = Token("bos_token"), eos = Token("eos_token"), pad = Token("pad_token"), unk = Token("unk_token");
        var eosIds = new List<int>();
        if (eos is not null && special.TryGetValue(eos, out int eosId))
            eosIds.Add(eosId);
        JsonObject? generation = ReadJson(Path.Combine(folder, "generation_config.json"));
        switch (generation?["eos_token_id"])
        {
            case JsonArray ids:
                eosIds.AddRange(ids.Select(i => i!.GetValue<int>()));
                break;
            case JsonValue id:
                eosIds.Add(id.GetValue<int>());
                break;
        }
        string? template = ChatTemplateIn(folder, config);

        return new ModelTokenizer(content, special, kind, [.. isSpecial.Where(kv => !kv.Value && special.ContainsKey(kv.Key)).Select(kv => kv.Key)])
        {
            BosToken = bos is not null && special.ContainsKey(bos) ? bos : null,
            EosToken = eos is not null && special.ContainsKey(eos) ? eos : null,
            PadToken = pad is not null && special.ContainsKey(pad) ? pad : null,
            UnkToken = unk is not null && special.ContainsKey(unk) ? unk : null,
            EosTokenIds = eosIds.Distinct().ToArray(),
            ChatTemplateSource = template,
            SourceFolder = Path.GetFullPath(folder),
        };
    }

    /// <summary>
    /// A folder's chat template: tokenizer_config.json's <c>chat_template</c> (a string, or the one named <c>default</c> in
    /// a list), else <c>chat_template.jinja</c>; null when it has neither.
    /// </summary>
    internal static string? ChatTemplateIn(string folder, JsonObject? config = null)
    {
        config ??= ReadJson(Path.Combine(folder, "tokenizer_config.json"));
        string? template = config?["chat_template"] switch
        {
            JsonValue v => v.GetValue<string>(),
            JsonArray named => named.FirstOrDefault(t => t?["name"]?.GetValue<string>() == "default")?["template"]?.GetValue<string>(),
            _ => null,
        };
        string templateFile = Path.Combine(folder, "chat_template.jinja");
        return template ?? (File.Exists(templateFile) ? File.ReadAllText(templateFile) : null);
    }

    static bool IsByteLevel(JsonObject json) =>
        json["decoder"]?["type"]?.GetValue<string>() == "ByteLevel" || json["pre_tokenizer"]?.ToJsonString().Contains("\"ByteLevel\"") == true;

    /// <summary>model.vocab of a tokenizer.json: token strings and ids, in the file's order.</summary>
    internal static List<KeyValuePair<string, int>> ReadVocabulary(JsonObject json, string path) =>
        (json["model"]?["vocab"] as JsonObject ?? throw new InvalidDataException($"'{path}': model.vocab is missing or not an object."))
            .Select(kv => new KeyValuePair<string, int>(kv.Key, kv.Value is JsonValue v && v.TryGetValue(out int id) && id >= 0 ? id
                : throw new InvalidDataException($"'{path}': model.vocab[\"{kv.Key}\"] must be a token id, got {kv.Value?.ToJsonString() ?? "null"}."))).ToList();

    /// <summary>model.merges of a tokenizer.json, highest priority first: <c>"a b"</c> strings or <c>["a", "b"]</c> pairs.</summary>
    internal static List<(string Left, string Right)> ReadMerges(JsonObject json, string path) =>
        (json["model"]?["merges"] as JsonArray ?? throw new InvalidDataException($"'{path}': model.merges is missing or not a list."))
            .Select((m, i) => m switch
            {
                JsonArray { Count: 2 } pair when pair[0] is JsonValue a && a.TryGetValue(out string? left)
                    && pair[1] is JsonValue b && b.TryGetValue(out string? right) => (left, right),
                JsonValue v when v.TryGetValue(out string? merge) && merge.IndexOf(' ', 1) is > 0 and var space => (merge[..space], merge[(space + 1)..]),
                _ => throw new InvalidDataException($"'{path}': model.merges[{i}] must be \"a b\" or [\"a\", \"b\"], got {m?.ToJsonString() ?? "null"}."),
            }).ToList();

    /// <summary>The byte-level BPE tokenizer of a tokenizer.json.</summary>
    static Tokenizer BuildByteLevel(JsonObject json, string path, List<KeyValuePair<string, int>> vocabulary, List<(string Left, string Right)> merges)
    {
        var options = new BpeOptions(vocabulary)
        {
            Merges = merges.Select(m => m.Left + " " + m.Right),
            ByteLevel = true,
            PreTokenizer = PreTokenizerFor(json["pre_tokenizer"], path),
            Normalizer = NormalizerFor(json["normalizer"], path),
        };
        return BpeTokenizer.Create(options);
    }

    static PreTokenizer? PreTokenizerFor(JsonNode? node, string path)
    {
        if (node is null)
            return null;
        string type = node["type"]?.GetValue<string>() ?? "";
        switch (type)
        {
            case "Sequence":
                var parts = node["pretokenizers"]!.AsArray().Select(p => PreTokenizerFor(p, path)).OfType<PreTokenizer>().ToList();
                return parts.Count switch { 0 => null, 1 => parts[0], _ => new CompositePreTokenizer(parts, null) };
            case "ByteLevel":
                if (node["add_prefix_space"]?.GetValue<bool>() == true)
                    throw new InvalidDataException($"'{path}': ByteLevel pre-tokenizer with add_prefix_space is not supported.");
                return node["use_regex"]?.GetValue<bool>() == false ? null : new RegexPreTokenizer(new Regex(Gpt2Pattern, RegexOptions.Compiled), null);
            case "Split":
                string behavior = node["behavior"]?.GetValue<string>() ?? "Isolated";
                string? pattern = node["pattern"]?["Regex"]?.GetValue<string>();
                if (pattern is null || behavior != "Isolated" || node["invert"]?.GetValue<bool>() == true)
                    throw new InvalidDataException($"'{path}': Split pre-tokenizer {node.ToJsonString()} is not supported (a Regex pattern with Isolated behavior is).");
                return new RegexPreTokenizer(new Regex(DotNetPattern(pattern), RegexOptions.Compiled), null);
            case "Digits":
                return new RegexPreTokenizer(new Regex(node["individual_digits"]?.GetValue<bool>() == true ? @"\p{N}|[^\p{N}]+" : @"\p{N}+|[^\p{N}]+", RegexOptions.Compiled), null);
            default:
                throw new InvalidDataException($"'{path}': pre-tokenizer type '{type}' is not supported.");
        }
    }

    static Normalizer? NormalizerFor(JsonNode? node, string path)
    {
        if (node is null)
            return null;
        string type = node["type"]?.GetValue<string>() ?? "";
        return type switch
        {
            "NFC" => new UnicodeNormalizer(NormalizationForm.FormC),
            "NFKC" => new UnicodeNormalizer(NormalizationForm.FormKC),
            "Sequence" when node["normalizers"]!.AsArray().Count == 0 => null,
            _ => throw new InvalidDataException($"'{path}': normalizer type '{type}' is not supported."),
        };
    }

    /// <summary>Rust-regex possessive quantifiers (<c>?+</c>, <c>++</c>, <c>*+</c>) written as .NET atomic-free equivalents.</summary>
    static string DotNetPattern(string pattern) =>
        pattern.Replace("?+", "?", StringComparison.Ordinal).Replace("++", "+", StringComparison.Ordinal).Replace("*+", "*", StringComparison.Ordinal);

    static JsonObject? ReadJson(string path)
    {
        if (!File.Exists(path))
            return null;
        try
        {
            return JsonNode.Parse(File.ReadAllText(path))?.AsObject();
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not valid JSON: {e.Message}", e);
        }
    }

    sealed class UnicodeNormalizer(NormalizationForm form) : Normalizer
    {
        public override string Normalize(string original) => original.Normalize(form);

        public override string Normalize(ReadOnlySpan<char> original) => original.ToString().Normalize(form);
    }
}
