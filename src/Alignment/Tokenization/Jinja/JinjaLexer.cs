using System.Globalization;
using System.Text;

namespace Alignment.Tokenization.Jinja;

internal enum TokenKind { Name, String, Integer, Float, Operator }

internal readonly record struct Token(TokenKind Kind, string Text, int Line);

internal enum PartKind { Text, Output, Statement }

/// <summary>A piece of the template: literal text, an <c>{{ expression }}</c> or a <c>{% statement %}</c> (its tokens).</summary>
internal sealed record Part(PartKind Kind, string Text, List<Token> Tokens, int Line);

/// <summary>
/// Cuts a Jinja template into parts with Jinja's whitespace control as transformers configures it: <c>{%-</c> and
/// <c>-%}</c> (and the same on <c>{{ }}</c> and <c>{# #}</c>) strip all whitespace on their side, <c>trim_blocks</c>
/// drops the first newline after a block or comment tag, <c>lstrip_blocks</c> drops the spaces and tabs before a block or
/// comment tag that opens its line (<c>{%+</c> keeps them). Comments are dropped.
/// </summary>
internal static class JinjaLexer
{
    sealed record RawTag(char Kind, string Inner, bool StripBefore, bool StripAfter, bool KeepBefore, int Line, int Start);

    public static List<Part> Lex(string source)
    {
        var texts = new List<(string Text, int Start, int Line)>();
        var tags = new List<RawTag>();
        int position = 0, line = 1;
        while (true)
        {
            int open = NextTag(source, position);
            string text = source[position..(open < 0 ? source.Length : open)];
            texts.Add((text, position, line));
            line += Count(text, '\n');
            if (open < 0)
                break;
            char kind = source[open + 1];
            string close = kind switch { '{' => "}}", '%' => "%}", _ => "#}" };
            int innerStart = open + 2;
            int end = kind == '#' ? source.IndexOf(close, innerStart, StringComparison.Ordinal) : FindClose(source, innerStart, close);
            if (end < 0)
                throw new JinjaException($"'{source[open..(open + 2)]}' is never closed with '{close}'", line);
            string inner = source[innerStart..end];
            bool stripBefore = inner.StartsWith('-'), keepBefore = inner.StartsWith('+'), stripAfter = inner.EndsWith('-');
            inner = inner[(stripBefore || keepBefore ? 1 : 0)..(stripAfter ? inner.Length - 1 : inner.Length)];
            tags.Add(new RawTag(kind, inner, stripBefore, stripAfter, keepBefore, line, open));
            line += Count(inner, '\n');
            position = end + 2;
        }

        // Whitespace control, applied to the text on either side of each tag.
        var trimmed = texts.Select(t => t.Text).ToArray();
        for (int i = 0; i < tags.Count; i++)
        {
            RawTag tag = tags[i];
            bool block = tag.Kind is '%' or '#';
            ref string before = ref trimmed[i];
            if (tag.StripBefore)
            {
                before = before.TrimEnd();
            }
            else if (block && !tag.KeepBefore)
            {
                int lineStart = before.LastIndexOf('\n') + 1;
                bool startsLine = lineStart > 0 || texts[i].Start == 0 || source[texts[i].Start - 1] == '\n';
                if (startsLine && before.AsSpan(lineStart).IndexOfAnyExcept(' ', '\t') < 0)
                    before = before[..lineStart];
            }
            ref string after = ref trimmed[i + 1];
            if (tag.StripAfter)
                after = after.TrimStart();
            else if (block && after.StartsWith('\n'))
                after = after[1..];
            else if (block && after.StartsWith("\r\n", StringComparison.Ordinal))
                after = after[2..];
        }

        var parts = new List<Part>();
        for (int i = 0; i < texts.Count; i++)
        {
            if (trimmed[i].Length > 0)
                parts.Add(new Part(PartKind.Text, trimmed[i], [], texts[i].Line));
            if (i < tags.Count && tags[i].Kind != '#')
            {
                RawTag tag = tags[i];
                if (tag.Kind == '%' && tag.Inner.Trim() == "raw")
                    throw new JinjaException("{% raw %} blocks are not supported", tag.Line);
                parts.Add(new Part(tag.Kind == '{' ? PartKind.Output : PartKind.Statement, tag.Inner, Tokenize(tag.Inner, tag.Line), tag.Line));
            }
        }
        return parts;
    }

    static int Count(string text, char c) => text.AsSpan().Count(c);

    static int NextTag(string source, int from)
    {
        for (int i = source.IndexOf('{', from); i >= 0 && i + 1 < source.Length; i = source.IndexOf('{', i + 1))
            if (source[i + 1] is '{' or '%' or '#')
                return i;
        return -1;
    }

    /// <summary>The closing delimiter's index, skipping string literals and, as Jinja's lexer does, brackets left open.</summary>
    static int FindClose(string source, int from, string close)
    {
        int depth = 0;
        for (int i = from; i + 1 < source.Length; i++)
        {
            char c = source[i];
            if (c is '\'' or '"')
            {
                int j = i + 1;
                while (j < source.Length && source[j] != c)
                    j += source[j] == '\\' ? 2 : 1;
                i = j;
            }
            else if (depth == 0 && c == close[0] && source[i + 1] == close[1])
            {
                return i;
            }
            else if (c is '(' or '[' or '{')
            {
                depth++;
            }
            else if (c is ')' or ']' or '}' && depth > 0)
            {
                depth--;
            }
        }
        return -1;
    }

    static readonly string[] Operators = ["==", "!=", "<=", ">=", "//", "**", "<", ">", "+", "-", "*", "/", "%", "~", "|", ".", ",", ":", "(", ")", "[", "]", "{", "}", "="];

    static List<Token> Tokenize(string code, int line)
    {
        var tokens = new List<Token>();
        int i = 0;
        while (i < code.Length)
        {
            char c = code[i];
            if (char.IsWhiteSpace(c))
            {
                if (c == '\n')
                    line++;
                i++;
            }
            else if (char.IsLetter(c) || c == '_')
            {
                int start = i;
                while (i < code.Length && (char.IsLetterOrDigit(code[i]) || code[i] == '_'))
                    i++;
                tokens.Add(new Token(TokenKind.Name, code[start..i], line));
            }
            else if (char.IsDigit(c))
            {
                int start = i;
                while (i < code.Length && (char.IsDigit(code[i]) || code[i] == '_'))
                    i++;
                bool isFloat = i + 1 < code.Length && code[i] == '.' && char.IsDigit(code[i + 1]);
                if (isFloat)
                {
                    i++;
                    while (i < code.Length && char.IsDigit(code[i]))
                        i++;
                }
                string number = code[start..i].Replace("_", "", StringComparison.Ordinal);
                tokens.Add(new Token(isFloat ? TokenKind.Float : TokenKind.Integer, number, line));
            }
            else if (c is '\'' or '"')
            {
                var text = new StringBuilder();
                int j = i + 1;
                for (; j < code.Length && code[j] != c; j++)
                {
                    if (code[j] != '\\' || j + 1 == code.Length)
                    {
                        text.Append(code[j]);
                        continue;
                    }
                    char e = code[++j];
                    switch (e)
                    {
                        case 'n': text.Append('\n'); break;
                        case 't': text.Append('\t'); break;
                        case 'r': text.Append('\r'); break;
                        case '0': text.Append('\0'); break;
                        case 'u' when j + 4 < code.Length:
                            text.Append((char)int.Parse(code.AsSpan(j + 1, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                            j += 4;
                            break;
                        case '\\' or '\'' or '"': text.Append(e); break;
                        default: text.Append('\\').Append(e); break;
                    }
                }
                if (j >= code.Length)
                    throw new JinjaException("a string literal is never closed", line);
                tokens.Add(new Token(TokenKind.String, text.ToString(), line));
                i = j + 1;
            }
            else
            {
                string? op = Operators.FirstOrDefault(o => string.CompareOrdinal(code, i, o, 0, o.Length) == 0)
                    ?? throw new JinjaException($"unexpected character '{c}'", line);
                tokens.Add(new Token(TokenKind.Operator, op, line));
                i += op.Length;
            }
        }
        return tokens;
    }
}

/// <summary>A chat template that cannot be parsed or fails while rendering; the message names the template line.</summary>
internal sealed class JinjaException(string message, int line) : Exception($"chat template line {line}: {message}")
{
    public int Line { get; } = line;
}
