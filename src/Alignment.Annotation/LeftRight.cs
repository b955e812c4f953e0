using System.Security.Cryptography;
using System.Text;

namespace Alignment.Annotation;

/// <summary>
/// Which completion a rater sees on the left: a keyed hash of (item, rater), so that it is stable across reloads and
/// restarts, differs between raters, and cannot be guessed from the item alone.
/// </summary>
internal static class LeftRight
{
    /// <summary>True when completion B is shown on the left.</summary>
    /// <param name="key">The store's secret (its admin token).</param>
    /// <param name="itemId">The item.</param>
    /// <param name="raterId">The rater.</param>
    public static bool Swapped(string key, long itemId, long raterId)
    {
        byte[] hash = HMACSHA256.HashData(Encoding.UTF8.GetBytes(key), Encoding.UTF8.GetBytes($"{itemId}/{raterId}"));
        return (hash[0] & 1) == 1;
    }
}
