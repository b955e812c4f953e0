using System.Globalization;
using System.Text;

namespace Alignment.Tokenization.Jinja;

/// <summary>An error while rendering; <see cref="JinjaContext.At{T}"/> adds the template line.</summary>
internal sealed class JinjaError(string message) : Exception(message);

/// <summary>The template called <c>raise_exception(message)</c>.</summary>
internal sealed class JinjaRaised(string message) : Exception(message);

/// <summary>Jinja's Undefined: prints as nothing, is false, iterates as empty; its attributes are errors.</summary>
internal sealed class JinjaUndefined(string name)
{
    public string Name => name;
}

/// <summary>A mapping (Python dict), in insertion order.</summary>
internal class JinjaDict : Dictionary<string, object?>
{
    public JinjaDict() : base(StringComparer.Ordinal)
    {
    }

    /// <summary>Whether the keys came from the caller's data (content) rather than the template.</summary>
    public bool ContentKeys { get; init; }
}

/// <summary><c>namespace(...)</c>: a mapping whose attributes <c>set</c> may assign.</summary>
internal sealed class JinjaNamespace : JinjaDict;

/// <summary>A built-in function or a bound method.</summary>
internal sealed class JinjaFunction(string name, Func<List<object?>, Dictionary<string, object?>, object?> call)
{
    public string Name => name;

    public object? Call(List<object?> args, Dictionary<string, object?> kwargs) => call(args, kwargs);
}

/// <summary>Variable scopes: the template's globals at the bottom, one scope per loop iteration or macro call above.</summary>
internal sealed class JinjaContext
{
    readonly List<(Dictionary<string, object?> Variables, bool InLoop)> _scopes;
    readonly Func<string, object?> _builtins;

    public JinjaContext(Dictionary<string, object?> globals, Func<string, object?> builtins)
    {
        _scopes = [(globals, false)];
        _builtins = builtins;
    }

    JinjaContext(Dictionary<string, object?> root, Func<string, object?> builtins, bool _)
    {
        _scopes = [(root, false), ([], false)];
        _builtins = builtins;
    }

    public bool InLoop => _scopes[^1].InLoop;

    public JinjaContext ForMacro() => new(_scopes[0].Variables, _builtins, true);

    public void Push(bool inLoop = false) => _scopes.Add(([], inLoop || InLoop));

    public void Pop() => _scopes.RemoveAt(_scopes.Count - 1);

    public object? Lookup(string name)
    {
        for (int i = _scopes.Count - 1; i >= 0; i--)
            if (_scopes[i].Variables.TryGetValue(name, out object? value))
                return value;
        return _builtins(name) ?? new JinjaUndefined(name);
    }

    public void Set(string name, object? value) => _scopes[^1].Variables[name] = value;

    /// <summary>Runs <paramref name="evaluate"/>, naming the template line in any error it raises.</summary>
    public static T At<T>(int line, Func<T> evaluate)
    {
        try
        {
            return evaluate();
        }
        catch (JinjaError e)
        {
            throw new JinjaException(e.Message, line);
        }
    }
}

/// <summary>Python's semantics for the values a template handles: text, integers, floats, booleans, None, lists, dicts.</summary>
internal static class JinjaValues
{
    public static string TypeName(object? value) => value switch
    {
        null => "None",
        JinjaUndefined u => $"undefined '{u.Name}'",
        JinjaText => "a string",
        long => "an integer",
        double => "a float",
        bool => "a boolean",
        List<object?> => "a list",
        JinjaDict => "a mapping",
        JinjaFunction f => $"function '{f.Name}'",
        JinjaMacro m => $"macro '{m.Name}'",
        _ => value.GetType().Name,
    };

    public static bool Truthy(object? value) => value switch
    {
        null or JinjaUndefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        JinjaText t => t.Length > 0,
        List<object?> list => list.Count > 0,
        JinjaDict dict => dict.Count > 0,
        _ => true,
    };

    /// <summary>The items of a list, the keys of a mapping, the characters of a string; nothing for Undefined.</summary>
    public static IEnumerable<object?> Iterate(object? value) => value switch
    {
        JinjaUndefined => [],
        List<object?> list => list,
        JinjaDict dict => dict.Keys.Select(k => (object?)Key(dict, k)).ToList(),
        JinjaText text => Enumerable.Range(0, text.Length).Select(i => (object?)text.Slice(i, 1)).ToList(),
        _ => throw new JinjaError($"{TypeName(value)} is not iterable"),
    };

    public static JinjaText Key(JinjaDict dict, string key) => dict.ContentKeys ? JinjaText.Content(key) : JinjaText.Template(key);

    /// <summary>The <c>loop</c> variable of iteration <paramref name="i"/>.</summary>
    public static JinjaDict Loop(List<object?> items, int i) => new()
    {
        ["index"] = (long)i + 1,
        ["index0"] = (long)i,
        ["revindex"] = (long)(items.Count - i),
        ["revindex0"] = (long)(items.Count - i - 1),
        ["first"] = i == 0,
        ["last"] = i == items.Count - 1,
        ["length"] = (long)items.Count,
        ["depth"] = 1L,
        ["depth0"] = 0L,
        ["previtem"] = i > 0 ? items[i - 1] : new JinjaUndefined("loop.previtem"),
        ["nextitem"] = i + 1 < items.Count ? items[i + 1] : new JinjaUndefined("loop.nextitem"),
        ["cycle"] = new JinjaFunction("loop.cycle", (args, _) => args.Count == 0 ? throw new JinjaError("loop.cycle needs arguments") : args[i % args.Count]),
    };

    /// <summary>Python's <c>str()</c>, keeping the provenance of text (a structure that holds content prints as content).</summary>
    public static JinjaText Str(object? value) => value switch
    {
        JinjaText text => text,
        JinjaUndefined => JinjaText.Empty,
        JinjaMacro or JinjaFunction => JinjaText.Template(TypeName(value)),
        _ => HoldsContent(value) ? JinjaText.Content(Repr(value, quote: false)) : JinjaText.Template(Repr(value, quote: false)),
    };

    public static bool HoldsContent(object? value) => value switch
    {
        JinjaText text => text.HasContent,
        List<object?> list => list.Any(HoldsContent),
        JinjaDict dict => dict.ContentKeys || dict.Values.Any(HoldsContent),
        _ => false,
    };

    /// <summary>Python's <c>repr()</c> (or <c>str()</c> at the top level when <paramref name="quote"/> is false).</summary>
    public static string Repr(object? value, bool quote = true) => value switch
    {
        null => "None",
        JinjaUndefined => "",
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => FloatRepr(d),
        JinjaText text => quote ? QuoteString(text.Value) : text.Value,
        List<object?> list => "[" + string.Join(", ", list.Select(item => Repr(item))) + "]",
        JinjaDict dict => "{" + string.Join(", ", dict.Select(kv => QuoteString(kv.Key) + ": " + Repr(kv.Value))) + "}",
        _ => TypeName(value),
    };

    static string QuoteString(string s)
    {
        char quote = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        var text = new StringBuilder().Append(quote);
        foreach (char c in s)
        {
            text.Append(c switch
            {
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ when c == quote => "\\" + c,
                _ => c.ToString(),
            });
        }
        return text.Append(quote).ToString();
    }

    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d))
            return "nan";
        if (double.IsInfinity(d))
            return d > 0 ? "inf" : "-inf";
        string r = d.ToString("R", CultureInfo.InvariantCulture);
        return r.Contains('.') || r.Contains('E') ? r.Replace("E+", "e+", StringComparison.Ordinal).Replace("E-", "e-", StringComparison.Ordinal) : r + ".0";
    }

    public static bool AreEqual(object? a, object? b) => (a, b) switch
    {
        (null, null) => true,
        (JinjaUndefined, JinjaUndefined) => true,
        (bool x, bool y) => x == y,
        (long or double or bool, long or double or bool) => ToDouble(a) == ToDouble(b),
        (JinjaText x, JinjaText y) => x.Value == y.Value,
        (List<object?> x, List<object?> y) => x.Count == y.Count && x.Zip(y).All(p => AreEqual(p.First, p.Second)),
        (JinjaDict x, JinjaDict y) => x.Count == y.Count && x.All(kv => y.TryGetValue(kv.Key, out object? v) && AreEqual(kv.Value, v)),
        _ => ReferenceEquals(a, b),
    };

    public static int Compare(object? a, object? b) => (a, b) switch
    {
        (long or double or bool, long or double or bool) => ToDouble(a).CompareTo(ToDouble(b)),
        (JinjaText x, JinjaText y) => string.CompareOrdinal(x.Value, y.Value),
        _ => throw new JinjaError($"cannot compare {TypeName(a)} with {TypeName(b)}"),
    };

    public static double ToDouble(object? value) => value switch
    {
        long l => l,
        double d => d,
        bool b => b ? 1 : 0,
        _ => throw new JinjaError($"{TypeName(value)} is not a number"),
    };

    public static bool Contains(object? container, object? item) => container switch
    {
        JinjaText text when item is JinjaText part => text.Value.Contains(part.Value, StringComparison.Ordinal),
        JinjaText => throw new JinjaError($"'in <string>' needs a string on the left, not {TypeName(item)}"),
        List<object?> list => list.Any(x => AreEqual(x, item)),
        JinjaDict dict => item is JinjaText key && dict.ContainsKey(key.Value),
        _ => throw new JinjaError($"{TypeName(container)} is not a container"),
    };

    public static object? Arithmetic(string op, object? a, object? b)
    {
        switch (op, a, b)
        {
            case ("+", JinjaText x, JinjaText y):
                return x + y;
            case ("+", List<object?> x, List<object?> y):
                return x.Concat(y).ToList();
            case ("*", JinjaText x, long n):
                return JinjaText.Concat(Enumerable.Repeat(x, (int)Math.Max(0, n)));
            case ("*", List<object?> x, long n):
                return Enumerable.Repeat(x, (int)Math.Max(0, n)).SelectMany(l => l).ToList();
            case (_, long x, long y) when op is "+" or "-" or "*" or "//" or "%" or "**":
                return op switch
                {
                    "+" => (object)(x + y),
                    "-" => x - y,
                    "*" => x * y,
                    "//" => y == 0 ? throw new JinjaError("integer division by zero") : (long)Math.Floor((double)x / y),
                    "%" => y == 0 ? throw new JinjaError("integer modulo by zero") : ((x % y) + y) % y,
                    _ => y >= 0 ? (long)Math.Pow(x, y) : (object)Math.Pow(x, y),
                };
            case (_, long or double or bool, long or double or bool):
                double p = ToDouble(a), q = ToDouble(b);
                return op switch
                {
                    "+" => p + q,
                    "-" => p - q,
                    "*" => p * q,
                    "/" => q == 0 ? throw new JinjaError("division by zero") : p / q,
                    "//" => Math.Floor(p / q),
                    "%" => p - q * Math.Floor(p / q),
                    "**" => Math.Pow(p, q),
                    _ => throw new JinjaError($"unknown operator {op}"),
                };
            default:
                throw new JinjaError($"unsupported operand types for {op}: {TypeName(a)} and {TypeName(b)}");
        }
    }
}
