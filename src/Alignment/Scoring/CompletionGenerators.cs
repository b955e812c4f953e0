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

    /// <summary>One completion of each prompt, in order; a generator that can batch them overrides this (the default asks one by one).</summary>
    async Task<IReadOnlyList<string>> GenerateEachAsync(IReadOnlyList<string> prompts, CancellationToken cancellationToken = default)
    {
        var completions = new List<string>(prompts.Count);
        foreach (string prompt in prompts)
            completions.Add((await GenerateAsync(prompt, 1, cancellationToken).ConfigureAwait(false))[0]);
        return completions;
    }
}

/// <summary>A model as a completion generator: the prompt as a user turn through the chat template, sampled with the given options.</summary>
public sealed class ModelCompletionGenerator(string name, ICausalLM model, ModelTokenizer tokenizer, IChatTemplate template, GenerationOptions options)
    : ICompletionGenerator
{
    /// <inheritdoc />
    public string Name { get; } = name;

    /// <summary>The prompt as a user turn through the template, ready to generate from.</summary>
    long[] PromptIds(string prompt) =>
        [.. tokenizer.Encode(template.Render([new ChatMessage("user", prompt)], addGenerationPrompt: true)).Select(i => (long)i)];

    /// <summary>The options, with the tokenizer's EOS ids when they name none.</summary>
    GenerationOptions Sampling => options with { EosTokenIds = options.EosTokenIds ?? tokenizer.EosTokenIds.Select(i => (long)i).ToArray() };

    /// <summary>Prompts per batch of <see cref="GenerateEachAsync"/>.</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>
    /// One completion of each prompt, <see cref="BatchSize"/> prompts per KV-cached batch (left-padded); with a seed, row i
    /// of the whole list samples from its own generator seeded by (seed, i), so the result does not depend on the batch size.
    /// </summary>
    public Task<IReadOnlyList<string>> GenerateEachAsync(IReadOnlyList<string> prompts, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        var completions = new List<string>(prompts.Count);
        for (int start = 0; start < prompts.Count; start += Math.Max(1, BatchSize))
        {
            var chunk = prompts.Skip(start).Take(Math.Max(1, BatchSize)).ToList();
            var ids = chunk.Select(PromptIds).ToList();
            var sampling = Sampling with
            {
                RowSeeds = options.Seed is { } seed ? [.. Enumerable.Range(start, chunk.Count).Select(row => unchecked(seed * 1_000_003L + row))] : null,
            };
            completions.AddRange(TextGenerator.Generate(model, ids, sampling, tokens => tokenizer.Decode(tokens), cancellationToken)
                .Select(c => tokenizer.Decode(c.Tokens, skipSpecialTokens: true).Trim()));
        }
        return Task.FromResult<IReadOnlyList<string>>(completions);
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<string>> GenerateAsync(string prompt, int count, CancellationToken cancellationToken = default)
    {
        long[] ids = PromptIds(prompt);
        GenerationOptions sampling = Sampling;
        IReadOnlyList<Completion> completions = TextGenerator.Generate(model, Enumerable.Repeat(ids, count).ToList(), sampling,
            tokens => tokenizer.Decode(tokens), cancellationToken);
        return Task.FromResult<IReadOnlyList<string>>(completions.Select(c => tokenizer.Decode(c.Tokens, skipSpecialTokens: true).Trim()).ToList());
    }
}
