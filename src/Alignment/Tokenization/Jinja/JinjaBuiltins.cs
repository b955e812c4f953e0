using System.Globalization;

namespace Alignment.Tokenization.Jinja;

/// <summary>
/// Attribute, item and slice access, Python's string and dict methods, and Jinja's filters and tests as Hugging Face chat
/// templates use them.
/// </summary>
internal static partial class JinjaBuiltins
{
    public static object? Attribute(object? target, string name)
    {
        switch (target)
        {
            case JinjaUndefined undefined:
                throw new JinjaError($"'{undefined.Name}' is undefined (reading its attribute '{name}')");
            case JinjaDict dict:
                if (dict.TryGetValue(name, out object? value))
                    return value;
                return (object?)DictMethod(dict, name) ?? new JinjaUndefined(name);
            case JinjaText text:
                return (object?)StringMethod(text, name) ?? new JinjaUndefined(name);
            default:
                return new JinjaUndefined(name);
        }
    }

    public static object? Item(object? target, object? index)
    {
        switch (target, index)
        {
            case (JinjaUndefined undefined, _):
                throw new JinjaError($"'{undefined.Name}' is undefined (reading an item of it)");
            case (List<object?> list, long i):
                long at = i < 0 ? list.Count + i : i;
                return at >= 0 && at < list.Count ? list[(int)at] : new JinjaUndefined($"[{i}]");
            case (JinjaText text, long i):
                long c = i < 0 ? text.Length + i : i;
                return c >= 0 && c < text.Length ? text.Slice((int)c, 1) : new JinjaUndefined($"[{i}]");
            case (JinjaDict dict, JinjaText key):
                return dict.TryGetValue(key.Value, out object? value) ? value : (object?)DictMethod(dict, key.Value) ?? new JinjaUndefined(key.Value);
            case (JinjaText text, JinjaText name):
                return (object?)StringMethod(text, name.Value) ?? new JinjaUndefined(name.Value);
            default:
                return new JinjaUndefined($"[{JinjaValues.Repr(index)}]");
        }
    }

    public static object? Slice(object? target, object? start, object? stop, object? step)
    {
        int length = target switch
        {
            List<object?> list => list.Count,
            JinjaText text => text.Length,
            _ => throw new JinjaError($"{JinjaValues.TypeName(target)} cannot be sliced"),
        };
        long by = step is null or JinjaUndefined ? 1 : AsInteger(step, "a slice step");
        if (by == 0)
            throw new JinjaError("slice step cannot be zero");
        long Bound(object? value, long fallback)
        {
            if (value is null or JinjaUndefined)
                return fallback;
            long v = AsInteger(value, "a slice index");
            if (v < 0)
                v += length;
            return by > 0 ? Math.Clamp(v, 0, length) : Math.Clamp(v, -1, length - 1);
        }
        long from = Bound(start, by > 0 ? 0 : length - 1), to = Bound(stop, by > 0 ? length : -1);
        var indices = new List<int>();
        for (long i = from; by > 0 ? i < to : i > to; i += by)
            indices.Add((int)i);
        if (target is List<object?> items)
            return indices.Select(i => items[i]).ToList();
        var characters = (JinjaText)target!;
        return by == 1 ? characters.Slice((int)from, Math.Max(0, (int)(to - from))) : JinjaText.Concat(indices.Select(i => characters.Slice(i, 1)));
    }

    static long AsInteger(object? value, string what) => value switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        _ => throw new JinjaError($"{what} must be an integer, not {JinjaValues.TypeName(value)}"),
    };

    static JinjaFunction? DictMethod(JinjaDict dict, string name) => name switch
    {
        "items" => new JinjaFunction("items", (_, _) => Items(dict)),
        "keys" => new JinjaFunction("keys", (_, _) => dict.Keys.Select(k => (object?)JinjaValues.Key(dict, k)).ToList()),
        "values" => new JinjaFunction("values", (_, _) => dict.Values.ToList()),
        "get" => new JinjaFunction("get", (args, _) => args.Count > 0 && args[0] is JinjaText key && dict.TryGetValue(key.Value, out object? v) ? v
            : args.Count > 1 ? args[1] : null),
        _ => null,
    };

    static List<object?> Items(JinjaDict dict) =>
        dict.Select(kv => (object?)new List<object?> { JinjaValues.Key(dict, kv.Key), kv.Value }).ToList();

    static JinjaFunction? StringMethod(JinjaText text, string name)
    {
        string? Text(List<object?> args, int i) => i < args.Count && args[i] is JinjaText t ? t.Value : null;
        return name switch
        {
            "strip" => new(name, (args, _) => text.Strip(Text(args, 0), start: true, end: true)),
            "lstrip" => new(name, (args, _) => text.Strip(Text(args, 0), start: true, end: false)),
            "rstrip" => new(name, (args, _) => text.Strip(Text(args, 0), start: false, end: true)),
            "split" => new(name, (args, kwargs) => text.Split(Text(args, 0) ?? (kwargs.GetValueOrDefault("sep") as JinjaText)?.Value,
                args.Count > 1 ? (int)AsInteger(args[1], "maxsplit") : kwargs.TryGetValue("maxsplit", out object? m) ? (int)AsInteger(m, "maxsplit") : -1)
                .Select(p => (object?)p).ToList()),
            "startswith" => new(name, (args, _) => Prefixes(args).Any(p => text.Value.StartsWith(p, StringComparison.Ordinal))),
            "endswith" => new(name, (args, _) => Prefixes(args).Any(p => text.Value.EndsWith(p, StringComparison.Ordinal))),
            "upper" => new(name, (_, _) => text.Map(s => s.ToUpperInvariant())),
            "lower" => new(name, (_, _) => text.Map(s => s.ToLowerInvariant())),
            "title" => new(name, (_, _) => text.Map(Title)),
            "capitalize" => new(name, (_, _) => text.Map(s => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant())),
            "replace" => new(name, (args, _) => text.Replace(Text(args, 0) ?? throw new JinjaError("replace() needs a string"),
                args.Count > 1 ? JinjaValues.Str(args[1]) : JinjaText.Empty, args.Count > 2 ? (int)AsInteger(args[2], "count") : -1)),
            "find" => new(name, (args, _) => (long)text.Value.IndexOf(Text(args, 0) ?? "", StringComparison.Ordinal)),
            "count" => new(name, (args, _) => (long)CountOf(text.Value, Text(args, 0) ?? "")),
            "join" => new(name, (args, _) => Join(args.Count > 0 ? args[0] : null, text)),
            "isdigit" => new(name, (_, _) => text.Length > 0 && text.Value.All(char.IsDigit)),
            "isspace" => new(name, (_, _) => text.Length > 0 && text.Value.All(char.IsWhiteSpace)),
            "splitlines" => new(name, (_, _) => text.Value.Length == 0 ? new List<object?>()
                : text.Strip("\n", start: false, end: true).Split("\n", -1).Select(p => (object?)p).ToList()),
            _ => null,
        };
    }

    static IEnumerable<string> Prefixes(List<object?> args) => args.Count == 0 ? throw new JinjaError("startswith/endswith need an argument") : args[0] switch
    {
        JinjaText t => [t.Value],
        List<object?> list => list.OfType<JinjaText>().Select(t => t.Value),
        _ => throw new JinjaError("startswith/endswith need a string or a tuple of strings"),
    };

    static int CountOf(string text, string part)
    {
        if (part.Length == 0)
            return text.Length + 1;
        int count = 0;
        for (int i = text.IndexOf(part, StringComparison.Ordinal); i >= 0; i = text.IndexOf(part, i + part.Length, StringComparison.Ordinal))
            count++;
        return count;
    }

    static string Title(string s)
    {
        var chars = s.ToCharArray();
        bool previousCased = false;
        for (int i = 0; i < chars.Length; i++)
        {
            chars[i] = previousCased ? char.ToLowerInvariant(chars[i]) : char.ToUpperInvariant(chars[i]);
            previousCased = char.IsLetter(chars[i]);
        }
        return new string(chars);
    }

    static JinjaText Join(object? items, JinjaText separator)
    {
        var parts = JinjaValues.Iterate(items).Select(JinjaValues.Str).ToList();
        var joined = new List<JinjaText>();
        for (int i = 0; i < parts.Count; i++)
        {
            if (i > 0)
                joined.Add(separator);
            joined.Add(parts[i]);
        }
        return JinjaText.Concat(joined);
    }

    public static bool Test(string name, object? value, List<object?> args)
    {
        object? Arg() => args.Count > 0 ? args[0] : throw new JinjaError($"the test '{name}' needs an argument");
        return name switch
        {
            "defined" => value is not JinjaUndefined,
            "undefined" => value is JinjaUndefined,
            "none" => value is null,
            "string" => value is JinjaText,
            "number" => value is long or double,
            "integer" => value is long,
            "float" => value is double,
            "boolean" => value is bool,
            "true" => value is true,
            "false" => value is false,
            "mapping" => value is JinjaDict,
            "iterable" => value is List<object?> or JinjaDict or JinjaText,
            "sequence" => value is List<object?> or JinjaDict or JinjaText,
            "callable" => value is JinjaFunction or JinjaMacro,
            "lower" => value is JinjaText t && t.Value == t.Value.ToLowerInvariant(),
            "upper" => value is JinjaText u && u.Value == u.Value.ToUpperInvariant(),
            "even" => AsInteger(value, "'even'") % 2 == 0,
            "odd" => AsInteger(value, "'odd'") % 2 != 0,
            "divisibleby" => AsInteger(value, "'divisibleby'") % AsInteger(Arg(), "'divisibleby'") == 0,
            "eq" or "equalto" or "==" or "sameas" => JinjaValues.AreEqual(value, Arg()),
            "ne" or "!=" => !JinjaValues.AreEqual(value, Arg()),
            "lt" or "lessthan" or "<" => JinjaValues.Compare(value, Arg()) < 0,
            "le" or "<=" => JinjaValues.Compare(value, Arg()) <= 0,
            "gt" or "greaterthan" or ">" => JinjaValues.Compare(value, Arg()) > 0,
            "ge" or ">=" => JinjaValues.Compare(value, Arg()) >= 0,
            "in" => JinjaValues.Contains(Arg(), value),
            _ => throw new JinjaError($"no test named '{name}'"),
        };
    }

    /// <summary>The global functions: <c>range</c>, <c>namespace</c>, <c>dict</c>, <c>raise_exception</c> and <c>strftime_now</c>.</summary>
    public static object? Global(string name, Func<DateTimeOffset> now) => name switch
    {
        "range" => new JinjaFunction(name, (args, _) =>
        {
            long[] a = args.Select(x => AsInteger(x, "range()'s argument")).ToArray();
            var (start, stop, step) = a.Length switch
            {
                1 => (0L, a[0], 1L),
                2 => (a[0], a[1], 1L),
                3 => (a[0], a[1], a[2]),
                _ => throw new JinjaError("range() takes 1 to 3 integers"),
            };
            if (step == 0)
                throw new JinjaError("range() step cannot be zero");
            var values = new List<object?>();
            for (long i = start; step > 0 ? i < stop : i > stop; i += step)
                values.Add(i);
            return values;
        }),
        "namespace" => new JinjaFunction(name, (args, kwargs) =>
        {
            var ns = new JinjaNamespace();
            foreach (var (key, value) in args.OfType<JinjaDict>().SelectMany(d => d).Concat(kwargs))
                ns[key] = value;
            return ns;
        }),
        "dict" => new JinjaFunction(name, (args, kwargs) =>
        {
            var dict = new JinjaDict();
            foreach (var (key, value) in args.OfType<JinjaDict>().SelectMany(d => d).Concat(kwargs))
                dict[key] = value;
            return dict;
        }),
        "raise_exception" => new JinjaFunction(name, (args, _) => throw new JinjaRaised(args.Count > 0 ? JinjaValues.Str(args[0]).Value : "raise_exception()")),
        "strftime_now" => new JinjaFunction(name, (args, _) => JinjaText.Template(Strftime(now(), args.Count > 0 ? JinjaValues.Str(args[0]).Value : ""))),
        _ => null,
    };

    /// <summary>Python's <c>strftime</c> for the codes chat templates use (C locale).</summary>
    static string Strftime(DateTimeOffset time, string format)
    {
        var text = new System.Text.StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 == format.Length)
            {
                text.Append(format[i]);
                continue;
            }
            char code = format[++i];
            bool unpadded = code == '-' && i + 1 < format.Length;   // glibc's %-d: no leading zero
            if (unpadded)
                code = format[++i];
            string Number(int value, int width) => value.ToString(unpadded ? "0" : new string('0', width), CultureInfo.InvariantCulture);
            text.Append(code switch
            {
                'd' => Number(time.Day, 2),
                'm' => Number(time.Month, 2),
                'y' => Number(time.Year % 100, 2),
                'Y' => Number(time.Year, 4),
                'b' => time.ToString("MMM", CultureInfo.InvariantCulture),
                'B' => time.ToString("MMMM", CultureInfo.InvariantCulture),
                'a' => time.ToString("ddd", CultureInfo.InvariantCulture),
                'A' => time.ToString("dddd", CultureInfo.InvariantCulture),
                'H' => Number(time.Hour, 2),
                'I' => Number(time.Hour % 12 == 0 ? 12 : time.Hour % 12, 2),
                'M' => Number(time.Minute, 2),
                'S' => Number(time.Second, 2),
                'p' => time.Hour < 12 ? "AM" : "PM",
                'j' => Number(time.DayOfYear, 3),
                '%' => "%",
                _ => "%" + code,
            });
        }
        return text.ToString();
    }
}
