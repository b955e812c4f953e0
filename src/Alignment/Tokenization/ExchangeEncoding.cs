namespace Alignment.Tokenization;

/// <summary>Token ids of one prompt and its completion, as scorers read them.</summary>
internal static class ExchangeEncoding
{
    /// <summary>
    /// The prompt as a user turn and the completion as the assistant turn through <paramref name="template"/>, or, without
    /// a template, the two texts encoded as content one after the other.
    /// </summary>
    public static long[] Encode(ModelTokenizer tokenizer, IChatTemplate? template, string prompt, string completion)
    {
        IEnumerable<int> ids = template is null
            ? [.. tokenizer.EncodeContent(prompt), .. tokenizer.EncodeContent(completion)]
            : tokenizer.Encode(template.Render([new ChatMessage("user", prompt), new ChatMessage("assistant", completion)], addGenerationPrompt: false));
        return ids.Select(i => (long)i).ToArray();
    }
}
