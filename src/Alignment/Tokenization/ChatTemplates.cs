namespace Alignment.Tokenization;

/// <summary>One message of a conversation.</summary>
/// <param name="Role"><c>system</c>, <c>user</c> or <c>assistant</c>.</param>
/// <param name="Content">The message text (treated as content: never turned into special tokens).</param>
public sealed record ChatMessage(string Role, string Content);

/// <summary>Renders conversations the way a model's chat template does (<see cref="ChatTemplate"/> runs the model's own Jinja).</summary>
public interface IChatTemplate
{
    /// <summary>A name for messages, for example <c>chatml</c>.</summary>
    string Name { get; }

    /// <summary>Renders a conversation into segments: template markers as special segments, message text as content.</summary>
    /// <param name="messages">The conversation.</param>
    /// <param name="addGenerationPrompt">Append the header that asks the model for an assistant turn.</param>
    /// <exception cref="ArgumentException">The template refuses the conversation (a role it does not support, roles that do not alternate …).</exception>
    IReadOnlyList<Segment> Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt);
}

/// <summary>
/// A model's chat template (<see cref="For"/>), or one named explicitly (<see cref="Named"/>), and the prompt/completion
/// split every trainer relies on. Every template is Jinja, run by <see cref="ChatTemplate"/>.
/// </summary>
public static class ChatTemplates
{
    /// <summary>The names <see cref="Named"/> knows: <c>chatml</c>, <c>llama2</c>, <c>llama3</c>, <c>mistral</c>, <c>zephyr</c>.</summary>
    public static IReadOnlyList<string> Names => NamedChatTemplates.Sources.Keys.ToList();

    /// <summary>
    /// A well-known template by name, for a model folder without one: <c>chatml</c> (Qwen, SmolLM), <c>llama2</c>
    /// (Llama-2-chat), <c>llama3</c> (Meta-Llama-3-Instruct), <c>mistral</c> (Mistral-7B-Instruct-v0.1) or <c>zephyr</c>
    /// (zephyr-7b-beta) — each the Jinja source those models ship.
    /// </summary>
    /// <param name="name">The template's name (case-insensitive).</param>
    /// <param name="tokenizer">The tokenizer whose special tokens and BOS/EOS strings the template uses.</param>
    /// <param name="variables">Extra template variables, as for <see cref="ChatTemplate.Parse"/>.</param>
    /// <exception cref="ArgumentException">An unknown name; the message lists the known ones.</exception>
    public static ChatTemplate Named(string name, ModelTokenizer tokenizer, IReadOnlyDictionary<string, object?>? variables = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(tokenizer);
        string key = name.ToLowerInvariant();
        return NamedChatTemplates.Sources.TryGetValue(key, out string? source)
            ? ChatTemplate.Parse(source, tokenizer, variables, key)
            : throw new ArgumentException($"There is no chat template named '{name}'; the known names are {string.Join(", ", NamedChatTemplates.Sources.Keys)}.", nameof(name));
    }

    /// <summary>
    /// A template named or found at a path — TRL's <c>chat_template_path</c>: a name <see cref="Named"/> knows, a Jinja file,
    /// a tokenizer_config.json, or a model folder with a chat template of its own.
    /// </summary>
    /// <param name="nameOrPath">The name, file or folder.</param>
    /// <param name="tokenizer">The tokenizer whose special tokens and BOS/EOS strings the template uses.</param>
    /// <exception cref="FileNotFoundException">Neither a known name nor an existing file or folder.</exception>
    /// <exception cref="InvalidDataException">The file or folder holds no template, or one that cannot be parsed; the message names it.</exception>
    public static ChatTemplate Load(string nameOrPath, ModelTokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(nameOrPath);
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (NamedChatTemplates.Sources.ContainsKey(nameOrPath.ToLowerInvariant()))
            return Named(nameOrPath, tokenizer);
        string? source;
        if (Directory.Exists(nameOrPath))
            source = TokenizerFiles.ChatTemplateIn(nameOrPath);
        else if (File.Exists(nameOrPath))
            source = Path.GetFileName(nameOrPath) == "tokenizer_config.json" ? TokenizerFiles.ChatTemplateIn(Path.GetDirectoryName(Path.GetFullPath(nameOrPath))!) : File.ReadAllText(nameOrPath);
        else
            throw new FileNotFoundException($"'{nameOrPath}' is neither a chat template name ({string.Join(", ", NamedChatTemplates.Sources.Keys)}) nor a file or folder.", nameOrPath);
        return ChatTemplate.Parse(source ?? throw new InvalidDataException($"'{nameOrPath}' holds no chat template (tokenizer_config.json \"chat_template\" or chat_template.jinja)."),
            tokenizer, name: $"from '{nameOrPath}'");
    }

    /// <summary>
    /// The template of a model: <paramref name="override"/> when given, otherwise the Jinja template its folder ships,
    /// run as transformers runs it.
    /// </summary>
    /// <exception cref="NotSupportedException">No override, and the model folder has no chat template.</exception>
    /// <exception cref="InvalidDataException">The folder's template cannot be parsed; the message names the line.</exception>
    public static IChatTemplate For(ModelTokenizer tokenizer, IChatTemplate? @override = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (@override is not null)
            return @override;
        string where = tokenizer.SourceFolder is null ? "the tokenizer" : $"'{tokenizer.SourceFolder}'";
        string source = tokenizer.ChatTemplateSource
            ?? throw new NotSupportedException($"{where} has no chat template (tokenizer_config.json \"chat_template\" or chat_template.jinja); " +
                $"name one with ChatTemplates.Named or ChatTemplates.Load ({string.Join(", ", NamedChatTemplates.Sources.Keys)}, a .jinja file or a model folder), or pass your own ChatTemplate.");
        return ChatTemplate.Parse(source, tokenizer, name: $"of {where}");
    }

    /// <summary>
    /// Splits a conversation into the prompt (with the template's generation prompt) and the completion (what the full
    /// conversation adds after it), so that encoding them separately gives the same ids as encoding them together. As in
    /// TRL, the prompt is the longest common prefix of the prompt rendered with its generation prompt and of the whole
    /// conversation: DeepSeek-R1's generation prompt opens a <c>&lt;think&gt;</c> block that its rendering of an answer
    /// has not, and that text belongs to the completion.
    /// </summary>
    /// <param name="template">The template.</param>
    /// <param name="prompt">The messages before the completion.</param>
    /// <param name="completion">The assistant message to train on.</param>
    /// <exception cref="InvalidOperationException">The template renders the prompt's messages differently once a completion
    /// follows them (Mistral v0.3's templates move the system message to the last user turn).</exception>
    public static (IReadOnlyList<Segment> Prompt, IReadOnlyList<Segment> Completion) Split(IChatTemplate template, IReadOnlyList<ChatMessage> prompt, ChatMessage completion) =>
        Split(template, prompt, [completion]);

    /// <summary>As <see cref="Split(IChatTemplate, IReadOnlyList{ChatMessage}, ChatMessage)"/>, for a completion of several messages.</summary>
    public static (IReadOnlyList<Segment> Prompt, IReadOnlyList<Segment> Completion) Split(IChatTemplate template, IReadOnlyList<ChatMessage> prompt, IReadOnlyList<ChatMessage> completion)
    {
        ArgumentNullException.ThrowIfNull(template);
        string asked = Text(template.Render(prompt, addGenerationPrompt: true));
        string messages = Text(template.Render(prompt, addGenerationPrompt: false));
        IReadOnlyList<Segment> full = Flatten(template.Render([.. prompt, .. completion], addGenerationPrompt: false));
        string fullText = Text(full);
        // What the prompt's own rendering has and the conversation's has not may be template text (Phi-3 ends a
        // conversation without a generation prompt with eos_token), never a prompt message.
        string unshared = messages[messages.AsSpan().CommonPrefixLength(fullText)..];
        if (prompt.Any(m => m.Content.Trim() is { Length: > 0 } content && unshared.Contains(content, StringComparison.Ordinal)))
            throw new InvalidOperationException(
                $"The {template.Name} template renders the prompt's messages differently once a completion follows them, so no prompt/completion " +
                "boundary exists (Mistral v0.3's templates move the system message into the last user turn: put the system text in the first user message instead).");
        int common = asked.AsSpan().CommonPrefixLength(fullText);

        // Cut the full rendering at the common prefix: inside content, split it; inside a special token, before it.
        int consumed = 0, index = 0;
        while (index < full.Count && consumed + full[index].Text.Length <= common)
            consumed += full[index++].Text.Length;
        var promptSegments = full.Take(index).ToList();
        var rest = full.Skip(index).ToList();
        if (consumed < common && index < full.Count && !full[index].IsSpecial)
        {
            string shared = full[index].Text;
            promptSegments.Add(Segment.Content(shared[..(common - consumed)]));
            rest[0] = Segment.Content(shared[(common - consumed)..]);
        }
        return (promptSegments, rest);
    }

    static string Text(IEnumerable<Segment> segments) => string.Concat(segments.Select(s => s.Text));

    /// <summary>Joins adjacent content segments (text is tokenized in one piece between special tokens, as Hugging Face does).</summary>
    internal static IReadOnlyList<Segment> Flatten(IEnumerable<Segment> segments)
    {
        var result = new List<Segment>();
        foreach (Segment segment in segments)
        {
            if (segment.Text.Length == 0)
                continue;
            if (!segment.IsSpecial && result.Count > 0 && !result[^1].IsSpecial)
                result[^1] = Segment.Content(result[^1].Text + segment.Text);
            else
                result.Add(segment);
        }
        return result;
    }
}
