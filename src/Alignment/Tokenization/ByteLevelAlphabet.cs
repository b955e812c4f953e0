using System.Text;

namespace Alignment.Tokenization;

/// <summary>
/// GPT-2's byte-level alphabet (<c>bytes_to_unicode</c>): the printable bytes <c>!</c>–<c>~</c>, <c>¡</c>–<c>¬</c> and
/// <c>®</c>–<c>ÿ</c> stand for themselves, every other byte for the character 256 + n, n counting those bytes in order.
/// Byte-level BPE vocabularies are written in it.
/// </summary>
internal static class ByteLevelAlphabet
{
    static readonly char[] Chars = Build();

    /// <summary>The byte-level string of <paramref name="text"/>'s UTF-8 bytes.</summary>
    public static string Map(string text)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        return string.Create(bytes.Length, bytes, (span, b) =>
        {
            for (int i = 0; i < b.Length; i++)
                span[i] = Chars[b[i]];
        });
    }

    static char[] Build()
    {
        var chars = new char[256];
        int next = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            chars[b] = printable ? (char)b : (char)(256 + next++);
        }
        return chars;
    }
}
