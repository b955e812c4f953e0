namespace Alignment.Tokenization;

/// <summary>
/// Finds whole tokens (special or added tokens) in text, as Hugging Face's added-token splitting does: at each position
/// the longest token that starts there, scanning left to right.
/// </summary>
internal sealed class TokenMatcher
{
    readonly Dictionary<char, string[]> _byFirstChar;

    public TokenMatcher(IEnumerable<string> tokens) =>
        _byFirstChar = tokens.Where(t => t.Length > 0).Distinct(StringComparer.Ordinal).GroupBy(t => t[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Length).ToArray());

    public bool IsEmpty => _byFirstChar.Count == 0;

    /// <summary>The text in order: runs without a token (<c>Token</c> null) and the tokens found.</summary>
    public IEnumerable<(string Text, string? Token)> Split(string text)
    {
        int start = 0;
        for (int i = 0; i < text.Length;)
        {
            string? token = _byFirstChar.TryGetValue(text[i], out string[]? candidates)
                ? Array.Find(candidates, t => string.CompareOrdinal(text, i, t, 0, t.Length) == 0)
                : null;
            if (token is null)
            {
                i++;
                continue;
            }
            if (i > start)
                yield return (text[start..i], null);
            yield return (token, token);
            i += token.Length;
            start = i;
        }
        if (start < text.Length)
            yield return (text[start..], null);
    }
}
