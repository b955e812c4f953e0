using System.Globalization;
using System.Text;

namespace Alignment.Tokenization.Jinja;

internal static partial class JinjaBuiltins
{
    public static object? Filter(JinjaContext context, string name, object? value, List<object?> args, Dictionary<string, object?> kwargs)
    {
        object? Arg(int i, string key, object? fallback = null) => i < args.Count ? args[i] : kwargs.TryGetValue(key, out object? v) ? v : fallback;
        switch (name)
        {
            case "trim":
                return AsText(value, name).Strip((Arg(0, "chars") as JinjaText)?.Value, start: true, end: true);
            case "upper" or "lower" or "title" or "capitalize":
                return StringMethod(AsText(value, name), name)!.Call([], []);
            case "replace":
                return StringMethod(AsText(value, name), name)!.Call(args, kwargs);
            case "string":
                return JinjaValues.Str(value);
            case "safe" or "e" or "escape" when value is JinjaText:
                return name == "safe" ? value : throw new JinjaError("HTML escaping is not used by chat templates; 'escape' is not supported");
            case "length" or "count":
                return value switch
                {
                    JinjaText t => (long)t.Length,
                    List<object?> l => (long)l.Count,
                    JinjaDict d => (long)d.Count,
                    JinjaUndefined => 0L,
                    _ => throw new JinjaError($"{JinjaValues.TypeName(value)} has no length"),
                };
            case "first":
                return JinjaValues.Iterate(value).FirstOrDefault(new JinjaUndefined("first"));
            case "last":
                return JinjaValues.Iterate(value).LastOrDefault(new JinjaUndefined("last"));
            case "list":
                return JinjaValues.Iterate(value).ToList();
            case "reverse":
                return value is JinjaText text ? JinjaText.Concat(Enumerable.Range(0, text.Length).Reverse().Select(i => text.Slice(i, 1)))
                    : JinjaValues.Iterate(value).Reverse().ToList();
            case "items":
                return value is JinjaDict dict ? Items(dict) : value is JinjaUndefined ? new List<object?>() : throw new JinjaError($"items needs a mapping, not {JinjaValues.TypeName(value)}");
            case "dictsort":
                return value is JinjaDict sorted ? Items(sorted).OrderBy(p => ((List<object?>)p!)[0] is JinjaText k ? k.Value : "", StringComparer.Ordinal).ToList()
                    : throw new JinjaError("dictsort needs a mapping");
            case "join":
                var items = JinjaValues.Iterate(value);
                if (Arg(1, "attribute") is JinjaText attribute)
                    items = items.Select(item => Attribute(item, attribute.Value));
                return Join(items.ToList(), Arg(0, "d") is JinjaText separator ? separator : JinjaText.Empty);
            case "default" or "d":
                bool boolean = JinjaValues.Truthy(Arg(1, "boolean", false));
                return value is JinjaUndefined || boolean && !JinjaValues.Truthy(value) ? Arg(0, "default_value", JinjaText.Empty) : value;
            case "int":
                return value switch
                {
                    long l => l,
                    double d => (long)Math.Truncate(d),
                    bool b => b ? 1L : 0L,
                    JinjaText t when long.TryParse(t.Value.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long parsed) => parsed,
                    JinjaText t when double.TryParse(t.Value.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double parsed) => (long)Math.Truncate(parsed),
                    _ => Arg(0, "default", 0L),
                };
            case "float":
                return value switch
                {
                    long or double or bool => JinjaValues.ToDouble(value),
                    JinjaText t when double.TryParse(t.Value.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double parsed) => parsed,
                    _ => Arg(0, "default", 0.0),
                };
            case "abs":
                return value is long whole ? Math.Abs(whole) : (object)Math.Abs(JinjaValues.ToDouble(value));
            case "round":
                int digits = (int)AsInteger(Arg(0, "precision", 0L), "round's precision");
                string method = (Arg(1, "method") as JinjaText)?.Value ?? "common";
                double number = JinjaValues.ToDouble(value), scale = Math.Pow(10, digits);
                return method switch
                {
                    "floor" => Math.Floor(number * scale) / scale,
                    "ceil" => Math.Ceiling(number * scale) / scale,
                    _ => Math.Round(number, digits, MidpointRounding.AwayFromZero),
                };
            case "sum":
                return JinjaValues.Iterate(value).Aggregate((object?)0L, (total, item) => JinjaValues.Arithmetic("+", total, item));
            case "min" or "max":
                var ordered = JinjaValues.Iterate(value).Order(Comparer<object?>.Create(JinjaValues.Compare)).ToList();
                return ordered.Count == 0 ? new JinjaUndefined(name) : name == "min" ? ordered[0] : ordered[^1];
            case "unique":
                var unique = new List<object?>();
                foreach (object? item in JinjaValues.Iterate(value))
                    if (!unique.Any(u => JinjaValues.AreEqual(u, item)))
                        unique.Add(item);
                return unique;
            case "sort":
                bool descending = JinjaValues.Truthy(Arg(0, "reverse", false));
                var key = Arg(2, "attribute") as JinjaText;
                var comparer = Comparer<object?>.Create((a, b) => JinjaValues.Compare(key is null ? a : Attribute(a, key.Value), key is null ? b : Attribute(b, key.Value)));
                var list = JinjaValues.Iterate(value).ToList();
                return (descending ? list.OrderDescending(comparer) : list.Order(comparer)).ToList();
            case "wordcount":
                return (long)AsText(value, name).Split(null, -1).Count;
            case "map":
                if (kwargs.TryGetValue("attribute", out object? mapped) && mapped is JinjaText mapAttribute)
                    return JinjaValues.Iterate(value).Select(item => Attribute(item, mapAttribute.Value) is JinjaUndefined && kwargs.TryGetValue("default", out object? fallback)
                        ? fallback : Attribute(item, mapAttribute.Value)).ToList();
                if (args.Count > 0 && args[0] is JinjaText filterName)
                    return JinjaValues.Iterate(value).Select(item => Filter(context, filterName.Value, item, args.Skip(1).ToList(), [])).ToList();
                throw new JinjaError("map needs attribute= or a filter name");
            case "select" or "reject" or "selectattr" or "rejectattr":
                bool byAttribute = name.EndsWith("attr", StringComparison.Ordinal), keep = name.StartsWith("select", StringComparison.Ordinal);
                int testAt = byAttribute ? 1 : 0;
                string? attributeName = byAttribute ? (args.Count > 0 && args[0] is JinjaText a ? a.Value : throw new JinjaError($"{name} needs an attribute name")) : null;
                string? test = args.Count > testAt ? (args[testAt] as JinjaText)?.Value ?? throw new JinjaError($"{name} needs a test name") : null;
                var testArgs = args.Skip(testAt + 1).ToList();
                return JinjaValues.Iterate(value).Where(item =>
                {
                    object? subject = attributeName is null ? item : Attribute(item, attributeName);
                    return (test is null ? JinjaValues.Truthy(subject) : Test(test, subject, testArgs)) == keep;
                }).ToList();
            case "tojson":
                int? indent = Arg(0, "indent") switch { long n => (int)n, null or JinjaUndefined => null, var other => throw new JinjaError($"tojson's indent must be an integer, not {JinjaValues.TypeName(other)}") };
                bool ascii = JinjaValues.Truthy(kwargs.GetValueOrDefault("ensure_ascii", false));
                bool sortKeys = JinjaValues.Truthy(kwargs.GetValueOrDefault("sort_keys", false));
                var separators = kwargs.GetValueOrDefault("separators") is List<object?> { Count: 2 } s
                    ? (JinjaValues.Str(s[0]).Value, JinjaValues.Str(s[1]).Value)
                    : (indent is null ? ", " : ",", ": ");
                var json = new StringBuilder();
                Json(value, json, indent, 0, ascii, sortKeys, separators);
                return JinjaValues.HoldsContent(value) ? JinjaText.Content(json.ToString()) : JinjaText.Template(json.ToString());
            case "indent":
                return Indent(AsText(value, name), Arg(0, "width", 4L), JinjaValues.Truthy(Arg(1, "first", false)), JinjaValues.Truthy(Arg(2, "blank", false)));
            case "center":
                string centered = AsText(value, name).Value;
                int width = (int)AsInteger(Arg(0, "width", 80L), "center's width");
                return JinjaText.Template(centered.PadLeft((width + centered.Length) / 2).PadRight(width));
            default:
                throw new JinjaError($"no filter named '{name}'");
        }
    }

    static JinjaText AsText(object? value, string filter) => value switch
    {
        JinjaText text => text,
        JinjaUndefined => JinjaText.Empty,
        _ => JinjaValues.Str(value),
    };

    /// <summary>Jinja's <c>indent</c>: every line after the first (and the first when asked) gets the indentation; blank lines only when asked.</summary>
    static JinjaText Indent(JinjaText text, object? width, bool first, bool blank)
    {
        JinjaText indentation = width is JinjaText w ? w : JinjaText.Template(new string(' ', (int)AsInteger(width, "indent's width")));
        var lines = text.Split("\n", -1);
        var parts = new List<JinjaText>();
        for (int i = 0; i < lines.Count; i++)
        {
            if (i > 0)
                parts.Add(JinjaText.Template("\n"));
            bool indentLine = (i > 0 || first) && (blank || lines[i].Length > 0);
            if (indentLine)
                parts.Add(indentation);
            parts.Add(lines[i]);
        }
        return JinjaText.Concat(parts);
    }

    /// <summary>Python's <c>json.dumps</c> with its <c>indent</c>, <c>ensure_ascii</c>, <c>sort_keys</c> and <c>separators</c>.</summary>
    static void Json(object? value, StringBuilder json, int? indent, int depth, bool ascii, bool sortKeys, (string Item, string Key) separators)
    {
        void NewLine(int level)
        {
            if (indent is { } n)
                json.Append('\n').Append(' ', n * level);
        }
        switch (value)
        {
            case null:
                json.Append("null");
                break;
            case bool b:
                json.Append(b ? "true" : "false");
                break;
            case long l:
                json.Append(l.ToString(CultureInfo.InvariantCulture));
                break;
            case double d:
                json.Append(double.IsNaN(d) ? "NaN" : double.IsInfinity(d) ? (d > 0 ? "Infinity" : "-Infinity") : JinjaValues.FloatRepr(d));
                break;
            case JinjaText text:
                JsonString(text.Value, json, ascii);
                break;
            case List<object?> list:
                if (list.Count == 0)
                {
                    json.Append("[]");
                    break;
                }
                json.Append('[');
                for (int i = 0; i < list.Count; i++)
                {
                    if (i > 0)
                        json.Append(separators.Item);
                    NewLine(depth + 1);
                    Json(list[i], json, indent, depth + 1, ascii, sortKeys, separators);
                }
                NewLine(depth);
                json.Append(']');
                break;
            case JinjaDict dict:
                if (dict.Count == 0)
                {
                    json.Append("{}");
                    break;
                }
                json.Append('{');
                var pairs = sortKeys ? dict.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList() : dict.ToList();
                for (int i = 0; i < pairs.Count; i++)
                {
                    if (i > 0)
                        json.Append(separators.Item);
                    NewLine(depth + 1);
                    JsonString(pairs[i].Key, json, ascii);
                    json.Append(separators.Key);
                    Json(pairs[i].Value, json, indent, depth + 1, ascii, sortKeys, separators);
                }
                NewLine(depth);
                json.Append('}');
                break;
            default:
                throw new JinjaError($"{JinjaValues.TypeName(value)} cannot be written as JSON");
        }
    }

    static void JsonString(string s, StringBuilder json, bool ascii)
    {
        json.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': json.Append("\\\""); break;
                case '\\': json.Append("\\\\"); break;
                case '\n': json.Append("\\n"); break;
                case '\r': json.Append("\\r"); break;
                case '\t': json.Append("\\t"); break;
                case '\b': json.Append("\\b"); break;
                case '\f': json.Append("\\f"); break;
                default:
                    if (c < 0x20 || ascii && c > 0x7F)
                        json.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else
                        json.Append(c);
                    break;
            }
        }
        json.Append('"');
    }
}
