namespace Alignment.Tokenization;

/// <summary>
/// Ordinal string keys with a fixed (not randomised) FNV-1a hash that also hashes spans: piece lookups happen once per
/// candidate merge, and the vocabulary is the model's, not an attacker's.
/// </summary>
internal sealed class PieceComparer : IEqualityComparer<string>, IAlternateEqualityComparer<ReadOnlySpan<char>, string>
{
    public static readonly PieceComparer Instance = new();

    public bool Equals(string? x, string? y) => string.Equals(x, y, StringComparison.Ordinal);

    public int GetHashCode(string obj) => GetHashCode(obj.AsSpan());

    public bool Equals(ReadOnlySpan<char> alternate, string other) => alternate.SequenceEqual(other);

    public int GetHashCode(ReadOnlySpan<char> alternate)
    {
        uint hash = 2166136261;
        foreach (char c in alternate)
            hash = (hash ^ c) * 16777619;
        return (int)hash;
    }

    public string Create(ReadOnlySpan<char> alternate) => alternate.ToString();
}
