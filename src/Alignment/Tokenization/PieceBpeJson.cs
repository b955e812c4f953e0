using System.Text;
using System.Text.Json.Nodes;

namespace Alignment.Tokenization;

/// <summary>
/// A tokenizer.json BPE that is not byte-level — pieces with <c>▁</c> for spaces and byte fallback, as the Hub serves
/// Llama 2, Mistral, TinyLlama and Gemma — as a <see cref="PieceBpe"/> ranked by its merges. Normalisers: <c>Prepend</c>,
/// <c>Replace</c> (string patterns), <c>NFC</c>, <c>NFKC</c> and sequences of them; pre-tokenizers: <c>Metaspace</c>
/// (any prepend scheme, split or not) and a space <c>Split</c> after spaces were replaced.
/// </summary>
internal static class PieceBpeJson
{
    const string Space = "▁";

    /// <exception cref="InvalidDataException">A merge names a token outside the vocabulary, or a normaliser, pre-tokenizer
    /// or option is not supported; the message names the file and the field.</exception>
    public static PieceBpe Build(JsonObject json, string path, List<KeyValuePair<string, int>> vocabulary, List<(string Left, string Right)> merges)
    {
        JsonObject model = json["model"]!.AsObject();
        var vocab = new Dictionary<string, int>(PieceComparer.Instance);
        foreach (var (piece, id) in vocabulary)
            vocab[piece] = id;
        var pieces = new string[vocabulary.Count == 0 ? 0 : vocabulary.Max(kv => kv.Value) + 1];
        Array.Fill(pieces, "");
        foreach (var (piece, id) in vocabulary)
            pieces[id] = piece;
        var ranks = new Dictionary<(int, int), (int, int)>();
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (left, right) = merges[rank];
            if (!vocab.TryGetValue(left, out int l) || !vocab.TryGetValue(right, out int r) || !vocab.TryGetValue(left + right, out int merged))
                throw new InvalidDataException($"'{path}': model.merges[{rank}] (\"{left}\", \"{right}\") names a token outside model.vocab.");
            ranks.TryAdd((l, r), (rank, merged));
        }
        if (model["continuing_subword_prefix"] is JsonValue || model["end_of_word_suffix"] is JsonValue)
            throw new InvalidDataException($"'{path}': model.continuing_subword_prefix and model.end_of_word_suffix are not supported.");
        int unknownId = model["unk_token"]?.GetValue<string>() is { } unk ? vocab.GetValueOrDefault(unk, -1) : -1;

        List<Func<string, string>> normalizers = [];
        AddNormalizers(json["normalizer"], path, normalizers);
        bool spacesReplaced = !normalizers.Aggregate("a b", (text, step) => step(text)).Contains(' ', StringComparison.Ordinal);
        var (prepend, split) = PreTokenizer(json["pre_tokenizer"], path, spacesReplaced);
        string Normalize(string text, bool atStart)
        {
            foreach (Func<string, string> step in normalizers)
                text = step(text);
            return prepend?.Invoke(text, atStart) ?? text;
        }
        string decoder = json["decoder"]?.ToJsonString() ?? "";
        bool strip = decoder.Contains("\"Strip\"", StringComparison.Ordinal) || decoder.Contains("\"Metaspace\"", StringComparison.Ordinal) && !decoder.Contains("\"never\"", StringComparison.Ordinal);
        return PieceBpe.ByMergeRank(vocab, pieces, ranks, model["byte_fallback"]?.GetValue<bool>() == true, unknownId,
            model["fuse_unk"]?.GetValue<bool>() == true, Normalize, split, strip);
    }

    static void AddNormalizers(JsonNode? node, string path, List<Func<string, string>> steps)
    {
        if (node is null)
            return;
        string type = node["type"]?.GetValue<string>() ?? "";
        switch (type)
        {
            case "Sequence":
                foreach (JsonNode? part in node["normalizers"]?.AsArray() ?? [])
                    AddNormalizers(part, path, steps);
                break;
            case "Prepend":
                string prefix = node["prepend"]?.GetValue<string>() ?? "";
                steps.Add(text => prefix + text);
                break;
            case "Replace":
                string pattern = node["pattern"]?["String"]?.GetValue<string>()
                    ?? throw new InvalidDataException($"'{path}': normalizer {node.ToJsonString()} is not supported (a Replace with a String pattern is).");
                string content = node["content"]?.GetValue<string>() ?? "";
                steps.Add(text => text.Replace(pattern, content, StringComparison.Ordinal));
                break;
            case "NFC":
                steps.Add(text => text.Normalize(NormalizationForm.FormC));
                break;
            case "NFKC":
                steps.Add(text => text.Normalize(NormalizationForm.FormKC));
                break;
            default:
                throw new InvalidDataException($"'{path}': normalizer type '{type}' is not supported with a byte-fallback BPE.");
        }
    }

    /// <summary>Metaspace: spaces to ▁, the ▁ prefix by its scheme (not doubled), words cut before each ▁ when it splits.</summary>
    static (Func<string, bool, string>? Prepend, PieceBpe.Split Split) PreTokenizer(JsonNode? node, string path, bool spacesReplaced)
    {
        if (node is null)
            return (null, PieceBpe.Split.None);
        string type = node["type"]?.GetValue<string>() ?? "";
        if (type == "Split" && spacesReplaced && node["pattern"]?["String"]?.GetValue<string>() == " ")
            return (null, PieceBpe.Split.None);   // Gemma: the normaliser already turned every space into ▁, so nothing splits
        if (type != "Metaspace")
            throw new InvalidDataException($"'{path}': pre-tokenizer {node.ToJsonString()} is not supported with a byte-fallback BPE (Metaspace is).");
        string replacement = node["replacement"]?.GetValue<string>() ?? Space;
        string scheme = node["prepend_scheme"]?.GetValue<string>()
            ?? (node["add_prefix_space"]?.GetValue<bool>() == false ? "never" : "always");
        if (scheme is not ("always" or "first" or "never"))
            throw new InvalidDataException($"'{path}': pre_tokenizer.prepend_scheme '{scheme}' is not one of always, first, never.");
        string Prepend(string text, bool atStart)
        {
            text = text.Replace(" ", replacement, StringComparison.Ordinal);
            bool prefix = scheme == "always" || scheme == "first" && atStart;
            return prefix && !text.StartsWith(replacement, StringComparison.Ordinal) ? replacement + text : text;
        }
        if (replacement != Space && node["split"]?.GetValue<bool>() != false)
            throw new InvalidDataException($"'{path}': a splitting Metaspace with replacement '{replacement}' is not supported (▁ is).");
        return (Prepend, node["split"]?.GetValue<bool>() == false ? PieceBpe.Split.None : PieceBpe.Split.BeforeSpace);
    }
}
