using System.CommandLine.Parsing;
using System.Globalization;

namespace Alignment.Cli.Arguments;

/// <summary>
/// Options with TRL's names: the kebab-case name, its snake_case spelling (as TRL's scripts and config files write it),
/// and any TRL or transformers name that differs. Numbers parse invariantly, and a value that does not parse is an
/// error naming the option.
/// </summary>
internal static class CliOption
{
    /// <summary>An option named <c>--name</c>, also accepted as <c>--name_with_underscores</c> and each of <paramref name="aliases"/>.</summary>
    public static Option<T> Create<T>(string name, string description, params string[] aliases)
    {
        var option = new Option<T>("--" + name) { Description = description };
        foreach (string alias in aliases.Prepend(name.Replace('-', '_')).Where(a => a != name).Distinct())
            option.Aliases.Add("--" + alias);
        return option;
    }

    /// <summary>An option whose value is required to be a whole number.</summary>
    public static Option<int?> Int(string name, string description, int? fallback, params string[] aliases) =>
        WithDefault(Create<int?>(name, description, aliases), fallback, Parse<int>(name, "an integer",
            text => int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v : (int?)null));

    /// <summary>An option whose value is required to be a finite number.</summary>
    public static Option<double?> Double(string name, string description, double? fallback, params string[] aliases) =>
        WithDefault(Create<double?>(name, description, aliases), fallback, Parse<double>(name, "a number",
            text => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v) ? v : (double?)null));

    /// <summary>A text option.</summary>
    public static Option<string?> Text(string name, string description, string? fallback = null, params string[] aliases)
    {
        Option<string?> option = Create<string?>(name, description, aliases);
        if (fallback is not null)
            option.DefaultValueFactory = _ => fallback;
        return option;
    }

    /// <summary>A flag: <c>--name</c> alone means true; <c>--name false</c> is accepted too.</summary>
    public static Option<bool> Flag(string name, string description, params string[] aliases) => Create<bool>(name, description, aliases);

    /// <summary>An option that takes one of <paramref name="choices"/>.</summary>
    public static Option<string?> Choice(string name, string description, string fallback, string[] choices, params string[] aliases)
    {
        Option<string?> option = Text(name, description, fallback, aliases);
        option.AcceptOnlyFromAmong(choices);
        return option;
    }

    static Option<T?> WithDefault<T>(Option<T?> option, T? fallback, Func<ArgumentResult, T?> parse) where T : struct
    {
        option.CustomParser = parse;
        if (fallback is not null)
            option.DefaultValueFactory = _ => fallback;
        return option;
    }

    static Func<ArgumentResult, T?> Parse<T>(string name, string kind, Func<string, T?> parse) where T : struct => result =>
    {
        string text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
        T? value = parse(text);
        if (value is null)
            result.AddError($"--{name} must be {kind}, got '{text}'.");
        return value;
    };
}
