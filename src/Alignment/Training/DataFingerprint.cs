using System.Security.Cryptography;
using System.Text;
using Alignment.Data;

namespace Alignment.Training;

/// <summary>
/// A short hash of a training set's token ids (or prompts), recorded with each checkpoint so that resuming on other data
/// with the same number of examples is noticed.
/// </summary>
internal static class DataFingerprint
{
    public static string Of(IEnumerable<TokenizedPair> pairs) => Hash(pairs.SelectMany(p => new[] { p.Prompt, p.Chosen, p.Rejected }));

    public static string Of(IEnumerable<TokenizedCompletion> examples) =>
        Hash(examples.SelectMany(e => new[] { e.Prompt, e.Completion, [e.Desirable ? 1 : 0] }));

    public static string Of(IEnumerable<string> prompts) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join("\u0000", prompts))))[..16];

    /// <summary>Prompts and their columns; the same as the prompts' own fingerprint when none has columns.</summary>
    public static string Of(IEnumerable<PromptExample> prompts) =>
        Of(prompts.Select(p => p.Columns.Count == 0 ? p.Prompt
            : p.Prompt + "\u0001" + string.Join("\u0001", p.Columns.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => $"{c.Key}={c.Value?.ToJsonString() ?? "null"}"))));

    static string Hash(IEnumerable<int[]> parts)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> number = stackalloc byte[4];
        foreach (int[] part in parts)
        {
            BitConverter.TryWriteBytes(number, part.Length);
            hash.AppendData(number);
            foreach (int id in part)
            {
                BitConverter.TryWriteBytes(number, id);
                hash.AppendData(number);
            }
        }
        return Convert.ToHexString(hash.GetHashAndReset())[..16];
    }
}
