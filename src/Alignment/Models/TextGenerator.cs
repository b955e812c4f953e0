using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Models;

/// <summary>Sampling settings, named as in transformers' <c>GenerationConfig</c>.</summary>
public sealed record GenerationOptions
{
    /// <summary><c>max_new_tokens</c>.</summary>
    public int MaxNewTokens { get; init; } = 64;

    /// <summary><c>temperature</c>; 0 means greedy (argmax) decoding.</summary>
    public double Temperature { get; init; } = 1.0;

    /// <summary><c>top_k</c>: sample among the k most likely tokens; 0 = off.</summary>
    public int TopK { get; init; }

    /// <summary><c>top_p</c>: sample among the smallest set of tokens whose probability reaches p; 1 = off.</summary>
    public double TopP { get; init; } = 1.0;

    /// <summary><c>eos_token_id</c>: tokens that end a sequence; null uses the model config's.</summary>
    public IReadOnlyList<long>? EosTokenIds { get; init; }

    /// <summary><c>pad_token_id</c> used for left padding and after a sequence ends; null uses the config's, else the first EOS, else 0.</summary>
    public long? PadTokenId { get; init; }

    /// <summary><c>stop_strings</c>: a sequence ends once its decoded completion contains one (kept in the output). Needs a decoder.</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    /// <summary>Seed of the sampling generator; null draws from TorchSharp's global generator.</summary>
    public long? Seed { get; init; }

    /// <summary>
    /// One seed per prompt, instead of <see cref="Seed"/>: each row draws from its own generator, so a row's sample does
    /// not depend on which other prompts share its batch (how data-parallel rollouts stay the same for any number of
    /// processes). Null uses <see cref="Seed"/>.
    /// </summary>
    public IReadOnlyList<long>? RowSeeds { get; init; }

    /// <summary>Checks the values.</summary>
    /// <exception cref="ArgumentException">A value is out of range; the message names it.</exception>
    public void Validate() => new OptionErrors()
        .Check(MaxNewTokens >= 1, $"max_new_tokens must be >= 1, got {MaxNewTokens}.")
        .Check(Temperature >= 0 && !double.IsInfinity(Temperature), $"temperature must be >= 0, got {Temperature}.")
        .Check(TopK >= 0, $"top_k must be >= 0, got {TopK}.")
        .Check(TopP > 0 && TopP <= 1, $"top_p must be in (0, 1], got {TopP}.")
        .ThrowIfAny();
}

/// <summary>Why a sequence stopped.</summary>
public enum FinishReason
{
    /// <summary>It produced an end-of-sequence token (included in the output).</summary>
    EndOfSequence,

    /// <summary>Its decoded text contains a stop string.</summary>
    StopString,

    /// <summary>It reached <see cref="GenerationOptions.MaxNewTokens"/>.</summary>
    Length,
}

/// <summary>One generated completion.</summary>
/// <param name="Tokens">The new tokens (EOS included when it ended the sequence; no padding).</param>
/// <param name="Reason">Why it stopped.</param>
public sealed record Completion(long[] Tokens, FinishReason Reason);

/// <summary>Batched autoregressive generation with a static KV cache (written in place) and an attention mask built once.</summary>
public static class TextGenerator
{
    /// <summary>Continues each prompt. Prompts of different lengths are left-padded into one batch.</summary>
    /// <param name="model">The model (a policy or a reference).</param>
    /// <param name="prompts">Token ids of each prompt (each non-empty).</param>
    /// <param name="options">Sampling settings.</param>
    /// <param name="decode">Turns tokens into text, for stop strings; required when any are given.</param>
    /// <param name="cancellationToken">Stops between steps.</param>
    /// <returns>One completion per prompt, in order.</returns>
    /// <exception cref="ArgumentException">Bad options, an empty prompt, or stop strings without a decoder.</exception>
    public static IReadOnlyList<Completion> Generate(ICausalLM model, IReadOnlyList<long[]> prompts, GenerationOptions options,
        Func<IReadOnlyList<long>, string>? decode = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (prompts.Count == 0)
            return [];
        if (prompts.Any(p => p is null || p.Length == 0))
            throw new ArgumentException("Every prompt needs at least one token.", nameof(prompts));
        if (options.StopStrings.Count > 0 && decode is null)
            throw new ArgumentException("Stop strings need a decode function.", nameof(decode));

        long[] eos = (options.EosTokenIds ?? model.Config.EosTokenIds).ToArray();
        long pad = options.PadTokenId ?? model.Config.PadTokenId ?? (eos.Length > 0 ? eos[0] : 0);
        int batch = prompts.Count, width = prompts.Max(p => p.Length);
        if (width + options.MaxNewTokens > model.Config.MaxPositionEmbeddings)
            throw new ArgumentException($"A prompt of {width} tokens plus max_new_tokens {options.MaxNewTokens} exceeds the model's " +
                $"max_position_embeddings ({model.Config.MaxPositionEmbeddings}).", nameof(options));
        Device device = model.Device;
        if (options.RowSeeds is { } rowSeeds && rowSeeds.Count != prompts.Count)
            throw new ArgumentException($"row_seeds has {rowSeeds.Count} seeds for {prompts.Count} prompts.", nameof(options));
        Generator[] generators = options.RowSeeds is { } seeds ? [.. seeds.Select(s => new Generator((ulong)s, device))]
            : options.Seed is { } seed ? [new Generator((ulong)seed, device)] : [];

        int total = width + options.MaxNewTokens;
        var ids = new long[batch, width];
        var mask = new long[batch, total]; // the whole generation's mask, built once: new tokens are real
        for (int b = 0; b < batch; b++)
        {
            int offset = width - prompts[b].Length;
            for (int t = 0; t < total; t++)
            {
                if (t < width)
                    ids[b, t] = t < offset ? pad : prompts[b][t - offset];
                mask[b, t] = t < offset ? 0 : 1;
            }
        }

        var generated = Enumerable.Range(0, batch).Select(_ => new List<long>()).ToArray();
        var reasons = new FinishReason?[batch];
        using var cache = new KvCache(model.Config.NumHiddenLayers, total);
        using var noGrad = no_grad();
        Tensor attention = tensor(mask, device: device).DetachFromDisposeScope();
        Tensor next = tensor(ids, device: device).DetachFromDisposeScope();
        try
        {
            for (int step = 0; step < options.MaxNewTokens && reasons.Any(r => r is null); step++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                long[] chosen;
                using (var scope = NewDisposeScope())
                {
                    Tensor hidden = model.Forward(next, attention.narrow(1, 0, cache.Length + next.shape[1]), cache: cache); // [B, t, H]
                    Tensor logits = model.Logits(hidden.narrow(1, hidden.shape[1] - 1, 1).squeeze(1)).to_type(ScalarType.Float32); // [B, V]
                    chosen = Pick(logits, options, generators).data<long>().ToArray();
                }
                for (int b = 0; b < batch; b++)
                {
                    if (reasons[b] is not null)
                    {
                        chosen[b] = pad; // finished rows keep feeding padding, which nothing reads
                        continue;
                    }
                    generated[b].Add(chosen[b]);
                    if (eos.Contains(chosen[b]))
                        reasons[b] = FinishReason.EndOfSequence;
                    else if (options.StopStrings.Count > 0 && options.StopStrings.Any(decode!(generated[b]).Contains))
                        reasons[b] = FinishReason.StopString;
                }
                next.Dispose();
                next = tensor(chosen, device: device).unsqueeze(1).DetachFromDisposeScope();
            }
        }
        finally
        {
            attention.Dispose();
            next.Dispose();
            foreach (Generator generator in generators)
                generator.Dispose();
        }
        return generated.Select((tokens, b) => new Completion(tokens.ToArray(), reasons[b] ?? FinishReason.Length)).ToList();
    }

    /// <summary>
    /// The next token of each row: argmax at temperature 0; otherwise temperature, then top-k, then top-p filtering (as
    /// transformers orders its logits warpers), then a draw from the remaining distribution.
    /// </summary>
    /// <param name="logits">[B, V] float32.</param>
    /// <param name="options">Temperature, top-k and top-p.</param>
    /// <param name="generators">One random source for the batch, one per row, or none for the global one.</param>
    /// <returns>[B] int64 token ids.</returns>
    internal static Tensor Pick(Tensor logits, GenerationOptions options, IReadOnlyList<Generator> generators)
    {
        if (options.Temperature == 0)
            return logits.argmax(-1);
        Tensor scores = logits.div(options.Temperature);
        if (options.TopK > 0 && options.TopK < scores.shape[1])
        {
            Tensor kth = scores.topk(options.TopK, dim: -1).values.narrow(1, options.TopK - 1, 1); // [B, 1]
            scores = scores.masked_fill(scores.lt(kth), double.NegativeInfinity);
        }
        if (options.TopP < 1)
        {
            // Ascending sort; drop the tokens whose cumulative probability stays within 1 − p, keeping at least the top one.
            var (sorted, order) = scores.sort(-1, descending: false);
            Tensor cumulative = sorted.softmax(-1).cumsum(-1);
            Tensor drop = cumulative.le(1 - options.TopP);
            drop.narrow(1, drop.shape[1] - 1, 1).fill_(false);
            Tensor dropInOriginalOrder = drop.scatter(1, order, drop);
            scores = scores.masked_fill(dropInOriginalOrder, double.NegativeInfinity);
        }
        Tensor probabilities = scores.softmax(-1); // [B, V]
        if (generators.Count <= 1)
            return probabilities.multinomial(1, generator: generators.FirstOrDefault()).squeeze(1);
        return cat(generators.Select((g, b) => probabilities.narrow(0, b, 1).multinomial(1, generator: g)).ToList(), 0).squeeze(1);
    }
}
