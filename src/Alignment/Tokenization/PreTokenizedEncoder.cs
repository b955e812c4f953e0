using Microsoft.ML.Tokenizers;

namespace Alignment.Tokenization;

/// <summary>
/// Byte-level BPE (tokenizer.json of GPT-2, Llama 3, Qwen, SmolLM) and tiktoken through Microsoft.ML.Tokenizers, built
/// without special tokens. Two behaviours it lacks are added here, pre-token by pre-token (BPE merges only within
/// pre-tokens, so the ids are otherwise the same): <c>ignore_merges</c> — a pre-token whose byte-level string is in the
/// vocabulary is that one token — and, where the tokenizer would turn special-token text into special ids (tiktoken), such
/// text is encoded character by character.
/// </summary>
/// <param name="tokenizer">The Microsoft.ML.Tokenizers tokenizer.</param>
/// <param name="wholePreTokens">With <c>ignore_merges</c>: the vocabulary by byte-level strings; else null.</param>
/// <param name="specialText">Special-token strings the tokenizer would match inside text, or empty.</param>
internal sealed class PreTokenizedEncoder(Tokenizer tokenizer, IReadOnlyDictionary<string, int>? wholePreTokens, IReadOnlyCollection<string> specialText) : IContentEncoder
{
    public IReadOnlyList<int> Encode(string text, bool atStart)
    {
        if (wholePreTokens is null && (specialText.Count == 0 || !specialText.Any(token => text.Contains(token, StringComparison.Ordinal))))
            return tokenizer.EncodeToIds(text, considerPreTokenization: true, considerNormalization: true);
        string normalized = tokenizer.Normalizer?.Normalize(text) ?? text;
        var ids = new List<int>();
        IEnumerable<(int Offset, int Length)> pieces = tokenizer.PreTokenizer?.PreTokenize(normalized) ?? [(0, normalized.Length)];
        foreach (var (offset, length) in pieces)
        {
            string piece = normalized.Substring(offset, length);
            if (wholePreTokens is not null && wholePreTokens.TryGetValue(ByteLevelAlphabet.Map(piece), out int whole))
                ids.Add(whole);
            else if (specialText.Any(token => piece.Contains(token, StringComparison.Ordinal)))
                foreach (char c in piece)
                    ids.AddRange(tokenizer.EncodeToIds(c.ToString(), considerPreTokenization: false, considerNormalization: false));
            else
                ids.AddRange(tokenizer.EncodeToIds(piece, considerPreTokenization: false, considerNormalization: false));
        }
        return ids;
    }

    public string Decode(IReadOnlyList<int> ids) => tokenizer.Decode(ids);
}
