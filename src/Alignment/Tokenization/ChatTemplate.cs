using System.Collections;
using System.Text.Json;
using System.Text.Json.Nodes;
using Alignment.Tokenization.Jinja;

namespace Alignment.Tokenization;

/// <summary>
/// A model's chat template — the Jinja source its folder ships (<c>tokenizer_config.json</c>'s <c>chat_template</c> or
/// <c>chat_template.jinja</c>) — executed as transformers' <c>apply_chat_template</c> executes it: the same variables
/// (<c>messages</c>, <c>add_generation_prompt</c>, <c>tools</c> and <c>documents</c> as none, the tokenizer's
/// <c>bos_token</c>, <c>eos_token</c>, <c>unk_token</c> and <c>pad_token</c>, and any extra variables such as
/// <c>enable_thinking</c>), the same whitespace control (<c>trim_blocks</c>, <c>lstrip_blocks</c>), loop controls,
/// <c>raise_exception</c> and <c>strftime_now</c>. Unlike a rendered string, the result remembers which text came from the
/// messages: special-token strings inside a message stay plain text, and only the template's own text becomes special
/// tokens.
/// </summary>
public sealed class ChatTemplate : IChatTemplate
{
    readonly List<Node> _template;
    readonly IReadOnlyDictionary<string, object?> _variables;
    readonly TokenMatcher _specialTokens;
    readonly TimeProvider _time;

    ChatTemplate(string name, string source, List<Node> template, IReadOnlyDictionary<string, object?> variables, TokenMatcher specialTokens, TimeProvider time)
    {
        Name = name;
        Source = source;
        _template = template;
        _variables = variables;
        _specialTokens = specialTokens;
        _time = time;
    }

    /// <summary>
    /// Parses a Jinja chat template.
    /// </summary>
    /// <param name="source">The Jinja source.</param>
    /// <param name="tokenizer">The tokenizer whose special tokens the template's text is cut into, and whose BOS, EOS, UNK
    /// and pad tokens the template sees; without one, nothing is special and those variables are undefined unless
    /// <paramref name="variables"/> sets them.</param>
    /// <param name="variables">Extra template variables (transformers' <c>**kwargs</c>), such as <c>enable_thinking</c>,
    /// <c>date_string</c> or <c>tools</c>: strings, numbers, booleans, null, lists, string-keyed dictionaries or
    /// <see cref="JsonNode"/>s. Their strings are content, like message text, except a string named <c>*_token</c>
    /// (<c>bos_token</c>, <c>eos_token</c> …), which is a special-token string as the tokenizer's own are.</param>
    /// <param name="name">A name for messages (for example the model folder).</param>
    /// <param name="time">The clock <c>strftime_now</c> reads (the system clock by default).</param>
    /// <exception cref="InvalidDataException">The source is not a template this interpreter can parse; the message names the line.</exception>
    public static ChatTemplate Parse(string source, ModelTokenizer? tokenizer = null, IReadOnlyDictionary<string, object?>? variables = null,
        string name = "chat_template", TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        List<Node> template;
        try
        {
            template = JinjaParser.Parse(source);
        }
        catch (JinjaException e)
        {
            throw new InvalidDataException($"The chat template {name} cannot be parsed: {e.Message}", e);
        }
        var all = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (tokenizer is not null)
        {
            foreach (var (key, token) in new[] { ("bos_token", tokenizer.BosToken), ("eos_token", tokenizer.EosToken), ("unk_token", tokenizer.UnkToken), ("pad_token", tokenizer.PadToken) })
                if (token is not null)
                    all[key] = JinjaText.Template(token);
        }
        foreach (var (key, value) in variables ?? new Dictionary<string, object?>())
            all[key] = Variable(key, value);
        var special = new TokenMatcher(tokenizer?.SpecialTokens.Keys ?? []);
        return new ChatTemplate(name, source, template, all, special, time ?? TimeProvider.System);
    }

    /// <summary>A name for messages.</summary>
    public string Name { get; }

    /// <summary>The Jinja source.</summary>
    public string Source { get; }

    /// <summary>The same template with more variables (later values win), for example <c>enable_thinking = false</c>.</summary>
    /// <exception cref="ArgumentException">A value of a type templates cannot read.</exception>
    public ChatTemplate With(IReadOnlyDictionary<string, object?> variables)
    {
        ArgumentNullException.ThrowIfNull(variables);
        var all = new Dictionary<string, object?>(_variables, StringComparer.Ordinal);
        foreach (var (key, value) in variables)
            all[key] = Variable(key, value);
        return new ChatTemplate(Name, Source, _template, all, _specialTokens, _time);
    }

    /// <summary>
    /// Renders a conversation into segments: the template's text cut at the tokenizer's special tokens, message text as
    /// content.
    /// </summary>
    /// <exception cref="ArgumentException">The template raised an exception for this conversation (<c>raise_exception</c>:
    /// a role it does not support, roles that do not alternate …); the message quotes it.</exception>
    /// <exception cref="InvalidOperationException">The template failed while rendering; the message names the line.</exception>
    public IReadOnlyList<Segment> Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        var segments = new List<Segment>();
        foreach (var (text, isContent) in RenderMarked(messages, addGenerationPrompt).Runs())
        {
            if (isContent)
                segments.Add(Segment.Content(text));
            else
                CutAtSpecialTokens(text, segments);
        }
        return segments;
    }

    /// <summary>The rendered text, as <c>apply_chat_template(messages, tokenize=False)</c> returns it.</summary>
    /// <exception cref="ArgumentException">The template raised an exception for this conversation.</exception>
    /// <exception cref="InvalidOperationException">The template failed while rendering; the message names the line.</exception>
    public string RenderText(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt) => RenderMarked(messages, addGenerationPrompt).Value;

    JinjaText RenderMarked(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var globals = new Dictionary<string, object?>(_variables, StringComparer.Ordinal)
        {
            ["messages"] = messages.Select(m => (object?)new JinjaDict { ["role"] = JinjaText.Template(m.Role), ["content"] = JinjaText.Content(m.Content) }).ToList(),
            ["add_generation_prompt"] = addGenerationPrompt,
        };
        globals.TryAdd("tools", null);
        globals.TryAdd("documents", null);
        var context = new JinjaContext(globals, name => JinjaBuiltins.Global(name, () => _time.GetLocalNow()));
        try
        {
            return Node.Capture(_template, context);
        }
        catch (JinjaRaised e)
        {
            throw new ArgumentException($"The chat template {Name} refuses this conversation: {e.Message}", nameof(messages), e);
        }
        catch (JinjaException e)
        {
            throw new InvalidOperationException($"The chat template {Name} failed: {e.Message}", e);
        }
    }

    /// <summary>Template text: each special token found in it (longest first at each position) is one special segment.</summary>
    void CutAtSpecialTokens(string text, List<Segment> segments) =>
        segments.AddRange(_specialTokens.Split(text).Select(piece => piece.Token is null ? Segment.Content(piece.Text) : Segment.Special(piece.Token)));

    /// <summary>
    /// A caller's variable: a string named <c>*_token</c> (<c>bos_token</c>, <c>eos_token</c> …) is a special-token string,
    /// template text as the tokenizer's own are; every other string is content.
    /// </summary>
    static object? Variable(string key, object? value) =>
        key.EndsWith("_token", StringComparison.Ordinal) && value is string token ? JinjaText.Template(token) : Convert(value, $"variables[\"{key}\"]");

    /// <summary>A caller's value as a template value; strings are content.</summary>
    static object? Convert(object? value, string path) => value switch
    {
        null => null,
        string s => JinjaText.Content(s),
        bool b => b,
        int or long or short or byte or uint or ushort or sbyte => System.Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture),
        float or double or decimal => System.Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture),
        JsonNode node => ConvertJson(node),
        JsonElement element => ConvertJson(JsonNode.Parse(element.GetRawText())),
        ChatMessage m => new JinjaDict { ["role"] = JinjaText.Template(m.Role), ["content"] = JinjaText.Content(m.Content) },
        IDictionary dictionary => ConvertDictionary(dictionary.Keys.Cast<object>().Select(k => (k.ToString()!, dictionary[k])), path),
        IEnumerable<KeyValuePair<string, object?>> pairs => ConvertDictionary(pairs.Select(kv => (kv.Key, kv.Value)), path),
        IEnumerable items => items.Cast<object?>().Select((item, i) => Convert(item, $"{path}[{i}]")).ToList(),
        _ => throw new ArgumentException($"{path}: a {value.GetType().Name} cannot be a template variable; use strings, numbers, booleans, null, lists, dictionaries or JSON.", nameof(value)),
    };

    static JinjaDict ConvertDictionary(IEnumerable<(string Key, object? Value)> pairs, string path)
    {
        var dict = new JinjaDict { ContentKeys = true };
        foreach (var (key, value) in pairs)
            dict[key] = Convert(value, $"{path}[\"{key}\"]");
        return dict;
    }

    static object? ConvertJson(JsonNode? node) => node switch
    {
        null => null,
        JsonObject o => ConvertDictionaryJson(o),
        JsonArray a => a.Select(ConvertJson).ToList(),
        JsonValue v when v.TryGetValue(out bool b) => b,
        JsonValue v when v.TryGetValue(out long l) => l,
        JsonValue v when v.TryGetValue(out double d) => d,
        JsonValue v when v.TryGetValue(out string? text) => JinjaText.Content(text),
        _ => throw new ArgumentException($"The JSON value {node.ToJsonString()} cannot be a template variable.", nameof(node)),
    };

    static JinjaDict ConvertDictionaryJson(JsonObject o)
    {
        var dict = new JinjaDict { ContentKeys = true };
        foreach (var (key, value) in o)
            dict[key] = ConvertJson(value);
        return dict;
    }
}
