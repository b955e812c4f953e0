using Alignment.Models;
using Alignment.Tokenization;

namespace Alignment.Scoring;

/// <summary>Produces candidate completions for a prompt.</summary>
public interface ICompletionGenerator
{
    /// <summary>A name for reports.</summary>
    string Name { get; }

    /// <summary>Samples <paramref name="count"/> completions of <paramref name="prompt"/>.</summary>
    Task<IReadOnlyList<string>> GenerateAsync(string prompt, int count, CancellationToken cancellationToken = default);
}

/// <summary>A model as a completion generator: the prompt as a user turn through the chat template, sampled with the given options.</summary>
public sealed class ModelCompletionGenerator(string name, ICausalLM model, ModelTokenizer tokenizer, IChatTemplate template, GenerationOptions options)
    : ICompletionGenerator
{
    /// <inheritdoc />
    public string Name { get; } = name;

    /// <inheritdoc />
    public Task<IReadOnlyList<string>> GenerateAsync(string prompt, int count, CancellationToken cancellationToken = default)
    {
        long[] ids = tokenizer.Encode(template.Render([new ChatMessage("user", prompt)], addGenerationPrompt: true)).Select(i => (long)i).ToArray();
        var sampling = options with { EosTokenIds = options.EosTokenIds ?? tokenizer.EosTokenIds.Select(i => (long)i).ToArray() };
        IReadOnlyList<Completion> completions = TextGenerator.Generate(model, Enumerable.Repeat(ids, count).ToList(), sampling,
            tokens => tokenizer.Decode(tokens), cancellationToken);
        return Task.FromResult<IReadOnlyList<string>>(completions.Select(c => tokenizer.Decode(c.Tokens, skipSpecialTokens: true).Trim()).ToList());
    }
}
