using System.Text;

namespace Alignment.Tokenization.Jinja;

/// <summary>
/// A template string that remembers, character by character, which characters came from the conversation (content) and
/// which from the template (its literals, <c>bos_token</c>, …). Slicing, stripping, splitting, replacing and joining
/// keep that provenance, so that the rendered text can be cut into special tokens (template text only) and content
/// (always plain text, whatever it contains).
/// </summary>
internal sealed class JinjaText : IEquatable<JinjaText>
{
    public static readonly JinjaText Empty = new("", null);

    /// <summary>The characters.</summary>
    public string Value { get; }

    /// <summary>Per character: whether it is content; null when none is.</summary>
    readonly bool[]? _content;

    JinjaText(string value, bool[]? content)
    {
        Value = value;
        _content = content is not null && Array.IndexOf(content, true) >= 0 ? content : null;
    }

    /// <summary>Template text.</summary>
    public static JinjaText Template(string value) => value.Length == 0 ? Empty : new(value, null);

    /// <summary>Content (from the conversation or the caller's variables).</summary>
    public static JinjaText Content(string value)
    {
        var content = new bool[value.Length];
        Array.Fill(content, true);
        return new(value, content);
    }

    public int Length => Value.Length;

    public bool HasContent => _content is not null;

    public bool IsContent(int index) => _content is not null && _content[index];

    public JinjaText Slice(int start, int length) =>
        length == Value.Length ? this : new(Value.Substring(start, length), _content?.AsSpan(start, length).ToArray());

    /// <summary>The same provenance over different characters of the same length; else all content if any was.</summary>
    public JinjaText Map(Func<string, string> transform)
    {
        string mapped = transform(Value);
        if (mapped.Length == Value.Length)
            return new(mapped, _content);
        return HasContent ? Content(mapped) : Template(mapped);
    }

    public static JinjaText Concat(IEnumerable<JinjaText> parts)
    {
        var builder = new Builder();
        foreach (JinjaText part in parts)
            builder.Append(part);
        return builder.ToText();
    }

    public static JinjaText operator +(JinjaText left, JinjaText right) => Concat([left, right]);

    public JinjaText Strip(string? chars, bool start, bool end)
    {
        Func<char, bool> strip = chars is null ? char.IsWhiteSpace : chars.Contains;
        int from = 0, to = Value.Length;
        while (start && from < to && strip(Value[from]))
            from++;
        while (end && to > from && strip(Value[to - 1]))
            to--;
        return Slice(from, to - from);
    }

    public List<JinjaText> Split(string? separator, int maxSplit)
    {
        var parts = new List<JinjaText>();
        if (separator is null)
        {
            // Python's str.split(): runs of whitespace separate, leading and trailing whitespace ignored.
            int i = 0;
            while (i < Value.Length)
            {
                while (i < Value.Length && char.IsWhiteSpace(Value[i]))
                    i++;
                if (i == Value.Length)
                    break;
                if (maxSplit >= 0 && parts.Count == maxSplit)
                {
                    parts.Add(Slice(i, Value.Length - i).Strip(null, start: false, end: true));
                    return parts;
                }
                int start = i;
                while (i < Value.Length && !char.IsWhiteSpace(Value[i]))
                    i++;
                parts.Add(Slice(start, i - start));
            }
            return parts;
        }
        if (separator.Length == 0)
            throw new ArgumentException("empty separator");
        int from = 0;
        while (maxSplit < 0 || parts.Count < maxSplit)
        {
            int at = Value.IndexOf(separator, from, StringComparison.Ordinal);
            if (at < 0)
                break;
            parts.Add(Slice(from, at - from));
            from = at + separator.Length;
        }
        parts.Add(Slice(from, Value.Length - from));
        return parts;
    }

    public JinjaText Replace(string old, JinjaText replacement, int count)
    {
        if (old.Length == 0)
            return this;
        var builder = new Builder();
        int from = 0, done = 0;
        while (count < 0 || done < count)
        {
            int at = Value.IndexOf(old, from, StringComparison.Ordinal);
            if (at < 0)
                break;
            builder.Append(Slice(from, at - from));
            builder.Append(replacement);
            from = at + old.Length;
            done++;
        }
        builder.Append(Slice(from, Value.Length - from));
        return builder.ToText();
    }

    /// <summary>Runs of equal provenance, in order.</summary>
    public IEnumerable<(string Text, bool IsContent)> Runs()
    {
        int start = 0;
        for (int i = 1; i <= Value.Length; i++)
            if (i == Value.Length || IsContent(i) != IsContent(start))
            {
                yield return (Value[start..i], IsContent(start));
                start = i;
            }
    }

    public bool Equals(JinjaText? other) => other is not null && other.Value == Value;

    public override bool Equals(object? obj) => obj is JinjaText other && Equals(other);

    public override int GetHashCode() => Value.GetHashCode(StringComparison.Ordinal);

    public override string ToString() => Value;

    /// <summary>Appends texts with their provenance.</summary>
    internal sealed class Builder
    {
        readonly StringBuilder _text = new();
        readonly List<bool> _content = [];
        bool _any;

        public void Append(JinjaText part)
        {
            _text.Append(part.Value);
            for (int i = 0; i < part.Length; i++)
                _content.Add(part.IsContent(i));
            _any |= part.HasContent;
        }

        public JinjaText ToText() => _text.Length == 0 ? Empty : new(_text.ToString(), _any ? [.. _content] : null);
    }
}
