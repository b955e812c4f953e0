using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Alignment.Cli;

/// <summary>
/// <c>--config FILE</c>: a JSON object of option values (TRL's snake_case keys or the kebab-case names). Options given
/// on the command line win; a key that names no option of the command is an error.
/// </summary>
internal static class ConfigFile
{
    public static Option<string?> Option() => new("--config") { Description = "A JSON file of option values (snake_case or kebab-case keys); the command line wins." };

    /// <summary>The arguments with the config file's values appended for the options the command line does not set.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="ArgumentException">The file is not a JSON object, or a key names no option of the command.</exception>
    public static string[] Merge(string[] args, RootCommand root)
    {
        int at = Array.FindIndex(args, a => a == "--config" || a.StartsWith("--config=", StringComparison.Ordinal));
        if (at < 0)
            return args;
        string path = args[at].Length > "--config".Length ? args[at]["--config=".Length..] : at + 1 < args.Length ? args[at + 1] : "";
        if (!File.Exists(path))
            throw new FileNotFoundException($"--config: no file at '{path}'.", path);
        JsonObject json;
        try
        {
            json = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new ArgumentException($"--config: '{path}' is not a JSON object.");
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"--config: '{path}' is not valid JSON: {e.Message}", e);
        }
        Command command = root.Subcommands.First(c => c.Name == args[0]);
        var given = new HashSet<string>(args.Where(a => a.StartsWith("--", StringComparison.Ordinal)).Select(a => a.Split('=')[0]), StringComparer.Ordinal);
        var merged = new List<string>(args);
        foreach (var (key, value) in json)
        {
            string alias = "--" + key;
            Option option = command.Options.Concat(root.Options.Where(o => o.Recursive)).FirstOrDefault(o => o.Name == alias || o.Aliases.Contains(alias) || o.Name == alias.Replace('_', '-'))
                ?? throw new ArgumentException($"--config '{path}': '{key}' is not an option of 'align {command.Name}'.");
            if (option.Name == "--config" || value is null || option.Aliases.Prepend(option.Name).Any(given.Contains))
                continue;
            merged.Add(option.Name);
            merged.Add(Text(value));
        }
        return merged.ToArray();
    }

    static string Text(JsonNode value) => value switch
    {
        JsonArray array => string.Join(",", array.Select(v => v is null ? "" : Text(v))),
        JsonValue v when v.TryGetValue(out string? s) => s,
        JsonValue v when v.TryGetValue(out bool b) => b ? "true" : "false",
        JsonValue v when v.TryGetValue(out double d) => d.ToString("R", CultureInfo.InvariantCulture),
        _ => value.ToJsonString(),
    };
}
