using System.Globalization;
using System.Text.RegularExpressions;

namespace Alignment.Scoring;

/// <summary>Finds and compares final answers for the accuracy rewards, by the rules written on <see cref="RewardFunction.Accuracy"/>.</summary>
internal static partial class FinalAnswer
{
    /// <summary>The reference answer in a solution, or null when there is none.</summary>
    public static string? Reference(string? solution)
    {
        if (solution is null)
            return null;
        string text = LastBoxed(solution) ?? (solution.LastIndexOf("####", StringComparison.Ordinal) is var hashes and >= 0 ? solution[(hashes + 4)..] : solution);
        text = text.Trim();
        return text.Length == 0 ? null : text;
    }

    /// <summary>The final answer of a completion, or null when it has none.</summary>
    /// <param name="completion">The completion's text.</param>
    /// <param name="numeric">The reference is a number: fall back on the completion's last number.</param>
    public static string? Extract(string completion, bool numeric)
    {
        if (LastBoxed(completion) is { } boxed)
            return boxed.Trim();
        if (AnswerBlock().Matches(completion) is { Count: > 0 } blocks)
            return blocks[^1].Groups[1].Value.Trim();
        if (numeric)
            return Numbers().Matches(completion) is { Count: > 0 } numbers ? numbers[^1].Value : null;
        string? line = completion.Split('\n').Select(l => l.Trim()).LastOrDefault(l => l.Length > 0);
        return line is null ? null : AnswerLead().Replace(line, "").Trim();
    }

    /// <summary>Whether an extracted answer equals the reference.</summary>
    public static bool Matches(string answer, string reference) =>
        TryNumber(reference, out double expected) && TryNumber(answer, out double actual)
            ? Math.Abs(actual - expected) <= 1e-9 * Math.Max(1, Math.Abs(expected))
            : Normalise(answer) == Normalise(reference);

    /// <summary>Whether a text reads as a number.</summary>
    public static bool IsNumber(string text) => TryNumber(text, out _);

    static bool TryNumber(string text, out double value)
    {
        value = 0;
        string s = text.Trim().Trim('$').Trim();
        if (s.EndsWith('.'))
            s = s[..^1];
        if (FractionLatex().Match(s) is { Success: true } latex)
        {
            bool divided = Divide(latex.Groups[2].Value, latex.Groups[3].Value, out value);
            value = latex.Groups[1].Value == "-" ? -value : value;
            return divided;
        }
        int slash = s.IndexOf('/');
        if (slash > 0)
            return Divide(s[..slash], s[(slash + 1)..], out value);
        return Plain(s, out value);
    }

    static bool Divide(string numerator, string denominator, out double value)
    {
        value = 0;
        if (!Plain(numerator.Trim(), out double n) || !Plain(denominator.Trim(), out double d) || d == 0)
            return false;
        value = n / d;
        return true;
    }

    static bool Plain(string s, out double value)
    {
        value = 0;
        if (!PlainNumber().IsMatch(s))
            return false;
        return double.TryParse(s.Replace(",", "", StringComparison.Ordinal), NumberStyles.Float, CultureInfo.InvariantCulture, out value) && double.IsFinite(value);
    }

    static string Normalise(string text)
    {
        string s = WhiteSpace().Replace(text.Trim().Trim('$').Trim(), " ").ToLowerInvariant();
        return s.EndsWith('.') ? s[..^1].TrimEnd() : s;
    }

    /// <summary>The content of the last <c>\boxed{…}</c> (braces nested), or null.</summary>
    static string? LastBoxed(string text)
    {
        int start = text.LastIndexOf(@"\boxed{", StringComparison.Ordinal);
        if (start < 0)
            return null;
        int open = start + @"\boxed{".Length, depth = 1;
        for (int i = open; i < text.Length; i++)
        {
            depth += text[i] switch { '{' => 1, '}' => -1, _ => 0 };
            if (depth == 0)
                return text[open..i];
        }
        return null; // unclosed
    }

    [GeneratedRegex(@"<answer>(.*?)</answer>", RegexOptions.Singleline)]
    private static partial Regex AnswerBlock();

    [GeneratedRegex(@"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?")]
    private static partial Regex Numbers();

    [GeneratedRegex(@"^[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?$|^[-+]?\.\d+$")]
    private static partial Regex PlainNumber();

    [GeneratedRegex(@"^([-+]?)\\[dt]?frac\{([^{}]+)\}\{([^{}]+)\}$")]
    private static partial Regex FractionLatex();

    [GeneratedRegex(@"^(?:final answer|the answer is|answer)\s*[:：]?\s*", RegexOptions.IgnoreCase)]
    private static partial Regex AnswerLead();

    [GeneratedRegex(@"\s+")]
    private static partial Regex WhiteSpace();
}
