namespace Alignment.Tokenization;

/// <summary>A piece of text to encode: content (always encoded as plain text) or one special token (encoded as its id).</summary>
/// <param name="Text">The text, or the special token's string.</param>
/// <param name="IsSpecial">Whether <paramref name="Text"/> is one special token.</param>
public readonly record struct Segment(string Text, bool IsSpecial)
{
    /// <summary>Content: encoded as text, whatever it contains.</summary>
    public static Segment Content(string text) => new(text, false);

    /// <summary>One special token.</summary>
    public static Segment Special(string token) => new(token, true);
}
