using System.Text.RegularExpressions;

namespace Alignment.Tokenization;

/// <summary>One message of a conversation.</summary>
/// <param name="Role"><c>system</c>, <c>user</c> or <c>assistant</c>.</param>
/// <param name="Content">The message text (treated as content: never turned into special tokens).</param>
public sealed record ChatMessage(string Role, string Content);

/// <summary>Renders conversations the way a model family's chat template does.</summary>
public interface IChatTemplate
{
    /// <summary>The family's name, for example <c>chatml</c>.</summary>
    string Name { get; }

    /// <summary>Renders a conversation into segments: template markers as special segments, message text as content.</summary>
    /// <param name="messages">The conversation.</param>
    /// <param name="addGenerationPrompt">Append the header that asks the model for an assistant turn.</param>
    /// <exception cref="ArgumentException">A role the family does not support.</exception>
    IReadOnlyList<Segment> Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt);
}

/// <summary>The chat-template families this library renders in C#, and their recognition from a model's Jinja source.</summary>
public static partial class ChatTemplates
{
    /// <summary>ChatML (Qwen2/2.5, SmolLM2): <c>&lt;|im_start|&gt;role\ncontent&lt;|im_end|&gt;\n</c>.</summary>
    /// <param name="defaultSystem">System message inserted when the conversation has none (Qwen's templates do this), or null.</param>
    public static IChatTemplate ChatMl(string? defaultSystem = null) => new ChatMlTemplate(defaultSystem);

    /// <summary>Llama 3 / 3.1 headers: <c>&lt;|start_header_id|&gt;role&lt;|end_header_id|&gt;\n\ncontent&lt;|eot_id|&gt;</c>.</summary>
    /// <param name="bosToken">The BOS token that opens the conversation.</param>
    /// <param name="knowledgeCutoffDate">Llama 3.1: the date line of its system preamble (null for Llama 3.0, which has none).</param>
    public static IChatTemplate Llama3(string bosToken = "<|begin_of_text|>", string? knowledgeCutoffDate = null) => new Llama3Template(bosToken, knowledgeCutoffDate);

    /// <summary>Llama 2 chat: <c>&lt;s&gt;[INST] &lt;&lt;SYS&gt;&gt;…&lt;&lt;/SYS&gt;&gt; user [/INST] answer &lt;/s&gt;</c>.</summary>
    public static IChatTemplate Llama2(string bosToken = "<s>", string eosToken = "</s>") => new InstTemplate("llama2", bosToken, eosToken, systemBlock: true);

    /// <summary>Mistral instruct (v0.1/v0.2): <c>&lt;s&gt;[INST] user [/INST]answer&lt;/s&gt;</c>; no system role.</summary>
    public static IChatTemplate Mistral(string bosToken = "<s>", string eosToken = "</s>") => new InstTemplate("mistral", bosToken, eosToken, systemBlock: false);

    /// <summary>Zephyr: <c>&lt;|user|&gt;\ncontent&lt;/s&gt;\n</c>.</summary>
    public static IChatTemplate Zephyr(string eosToken = "</s>") => new ZephyrTemplate(eosToken);

    /// <summary>
    /// The template of a model: <paramref name="override"/> when given, otherwise the family recognised from the
    /// tokenizer's Jinja source.
    /// </summary>
    /// <exception cref="NotSupportedException">No override, and the model has no template or one this library does not recognise.</exception>
    public static IChatTemplate For(ModelTokenizer tokenizer, IChatTemplate? @override = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (@override is not null)
            return @override;
        string source = tokenizer.ChatTemplateSource
            ?? throw new NotSupportedException("The model folder has no chat template (tokenizer_config.json \"chat_template\" or chat_template.jinja); pass one explicitly.");
        return Recognize(source, tokenizer.BosToken, tokenizer.EosToken);
    }

    /// <summary>Recognises a family from a chat template's Jinja source.</summary>
    /// <exception cref="NotSupportedException">The template is not one of the known families; the message quotes its start.</exception>
    public static IChatTemplate Recognize(string source, string? bosToken, string? eosToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (source.Contains("<|im_start|>", StringComparison.Ordinal))
        {
            Match system = DefaultSystemPattern().Match(source);
            return ChatMl(system.Success ? system.Groups[1].Value.Replace("\\n", "\n", StringComparison.Ordinal) : null);
        }
        if (source.Contains("<|start_header_id|>", StringComparison.Ordinal))
        {
            Match date = DatePattern().Match(source);
            string? cutoff = source.Contains("Cutting Knowledge Date", StringComparison.Ordinal) ? (date.Success ? date.Groups[1].Value : "26 Jul 2024") : null;
            return Llama3(bosToken ?? "<|begin_of_text|>", cutoff);
        }
        if (source.Contains("<<SYS>>", StringComparison.Ordinal))
            return Llama2(bosToken ?? "<s>", eosToken ?? "</s>");
        if (source.Contains("[INST]", StringComparison.Ordinal))
            return Mistral(bosToken ?? "<s>", eosToken ?? "</s>");
        if (source.Contains("<|user|>", StringComparison.Ordinal) && source.Contains("<|assistant|>", StringComparison.Ordinal))
            return Zephyr(eosToken ?? "</s>");
        string start = source.Length > 120 ? source[..120] + "…" : source;
        throw new NotSupportedException(
            $"The chat template is not one this library recognises (ChatML, Llama 3, Llama 2, Mistral [INST], Zephyr); pass a template explicitly. It begins: {start}");
    }

    /// <summary>
    /// Splits a conversation into the prompt (rendered with the generation prompt) and the completion (what the full
    /// conversation adds after it), so that encoding them separately gives the same ids as encoding them together.
    /// </summary>
    /// <param name="template">The template.</param>
    /// <param name="prompt">The messages before the completion.</param>
    /// <param name="completion">The assistant message to train on.</param>
    /// <exception cref="InvalidOperationException">The template does not render the prompt as a prefix of the full conversation.</exception>
    public static (IReadOnlyList<Segment> Prompt, IReadOnlyList<Segment> Completion) Split(IChatTemplate template, IReadOnlyList<ChatMessage> prompt, ChatMessage completion) =>
        Split(template, prompt, [completion]);

    /// <summary>As <see cref="Split(IChatTemplate, IReadOnlyList{ChatMessage}, ChatMessage)"/>, for a completion of several messages.</summary>
    public static (IReadOnlyList<Segment> Prompt, IReadOnlyList<Segment> Completion) Split(IChatTemplate template, IReadOnlyList<ChatMessage> prompt, IReadOnlyList<ChatMessage> completion)
    {
        ArgumentNullException.ThrowIfNull(template);
        IReadOnlyList<Segment> promptSegments = Flatten(template.Render(prompt, addGenerationPrompt: true));
        IReadOnlyList<Segment> full = Flatten(template.Render([.. prompt, .. completion], addGenerationPrompt: false));
        string promptText = string.Concat(promptSegments.Select(s => s.Text));
        string fullText = string.Concat(full.Select(s => s.Text));
        if (!fullText.StartsWith(promptText, StringComparison.Ordinal))
            throw new InvalidOperationException($"The {template.Name} template does not render the prompt as a prefix of the conversation.");

        // Walk the full rendering past the prompt's characters; the prompt must end on a segment boundary.
        int consumed = 0, index = 0;
        while (consumed < promptText.Length)
            consumed += full[index++].Text.Length;
        if (consumed != promptText.Length)
        {
            // The last prompt segment is content that the completion continues: split that content segment.
            Segment shared = full[index - 1];
            int keep = shared.Text.Length - (consumed - promptText.Length);
            var rest = new List<Segment> { Segment.Content(shared.Text[keep..]) };
            rest.AddRange(full.Skip(index));
            return (promptSegments, rest);
        }
        return (promptSegments, full.Skip(index).ToList());
    }

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

    static void RequireRoles(string template, IEnumerable<ChatMessage> messages, params string[] roles)
    {
        foreach (ChatMessage message in messages)
            if (!roles.Contains(message.Role))
                throw new ArgumentException($"The {template} template has no role '{message.Role}'; it supports {string.Join(", ", roles)}.", nameof(messages));
    }

    [GeneratedRegex(@"<\|im_start\|>system\\n([^'""{}]+?)<\|im_end\|>")]
    private static partial Regex DefaultSystemPattern();

    [GeneratedRegex(@"date_string = ""([^""]+)""")]
    private static partial Regex DatePattern();

    sealed class ChatMlTemplate(string? defaultSystem) : IChatTemplate
    {
        public string Name => "chatml";

        public IReadOnlyList<Segment> Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
        {
            RequireRoles(Name, messages, "system", "user", "assistant");
            var segments = new List<Segment>();
            IEnumerable<ChatMessage> all = defaultSystem is not null && (messages.Count == 0 || messages[0].Role != "system")
                ? messages.Prepend(new ChatMessage("system", defaultSystem))
                : messages;
            foreach (ChatMessage m in all)
                segments.AddRange([Segment.Special("<|im_start|>"), Segment.Content(m.Role + "\n" + m.Content), Segment.Special("<|im_end|>"), Segment.Content("\n")]);
            if (addGenerationPrompt)
                segments.AddRange([Segment.Special("<|im_start|>"), Segment.Content("assistant\n")]);
            return segments;
        }
    }

    sealed class Llama3Template(string bos, string? cutoffDate) : IChatTemplate
    {
        public string Name => cutoffDate is null ? "llama3" : "llama3.1";

        public IReadOnlyList<Segment> Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
        {
            RequireRoles(Name, messages, "system", "user", "assistant");
            var segments = new List<Segment> { Segment.Special(bos) };
            void Turn(string role, string content) => segments.AddRange(
            [
                Segment.Special("<|start_header_id|>"), Segment.Content(role), Segment.Special("<|end_header_id|>"),
                Segment.Content("\n\n" + content), Segment.Special("<|eot_id|>"),
            ]);
            IEnumerable<ChatMessage> rest = messages;
            if (cutoffDate is not null)
            {
                string system = messages.Count > 0 && messages[0].Role == "system" ? messages[0].Content.Trim() : "";
                Turn("system", $"Cutting Knowledge Date: December 2023\nToday Date: {cutoffDate}\n\n{system}");
                rest = messages.Count > 0 && messages[0].Role == "system" ? messages.Skip(1) : messages;
            }
            foreach (ChatMessage m in rest)
                Turn(m.Role, m.Content.Trim());
            if (addGenerationPrompt)
                segments.AddRange([Segment.Special("<|start_header_id|>"), Segment.Content("assistant"), Segment.Special("<|end_header_id|>"), Segment.Content("\n\n")]);
            return segments;
        }
    }

    sealed class InstTemplate(string name, string bos, string eos, bool systemBlock) : IChatTemplate
    {
        public string Name => name;

        public IReadOnlyList<Segment> Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
        {
            string? system = null;
            IEnumerable<ChatMessage> turns = messages;
            if (systemBlock && messages.Count > 0 && messages[0].Role == "system")
            {
                system = messages[0].Content;
                turns = messages.Skip(1);
            }
            RequireRoles(name, turns, "user", "assistant");
            var segments = new List<Segment>();
            if (!systemBlock)
                segments.Add(Segment.Special(bos));
            bool first = true;
            foreach (ChatMessage m in turns)
            {
                string content = first && system is not null ? $"<<SYS>>\n{system}\n<</SYS>>\n\n{m.Content}" : m.Content;
                first = false;
                if (m.Role == "user")
                {
                    if (systemBlock)
                        segments.Add(Segment.Special(bos));
                    segments.Add(Segment.Content(systemBlock ? $"[INST] {content.Trim()} [/INST]" : $"[INST] {content} [/INST]"));
                }
                else
                {
                    segments.Add(Segment.Content(systemBlock ? $" {content.Trim()} " : content));
                    segments.Add(Segment.Special(eos));
                }
            }
            return segments; // these templates have no generation header: the prompt already ends with [/INST]
        }
    }

    sealed class ZephyrTemplate(string eos) : IChatTemplate
    {
        public string Name => "zephyr";

        public IReadOnlyList<Segment> Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
        {
            RequireRoles(Name, messages, "system", "user", "assistant");
            var segments = new List<Segment>();
            foreach (ChatMessage m in messages)
                segments.AddRange([Segment.Special($"<|{m.Role}|>"), Segment.Content("\n" + m.Content), Segment.Special(eos), Segment.Content("\n")]);
            if (addGenerationPrompt)
                segments.AddRange([Segment.Special("<|assistant|>"), Segment.Content("\n")]);
            return segments;
        }
    }
}
