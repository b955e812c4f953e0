using Alignment.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Data;

/// <summary>
/// One padded batch of pairs for a single forward pass: rows 0..B−1 are prompt + chosen, rows B..2B−1 prompt + rejected.
/// Owns its tensors (outside any dispose scope); dispose it after the step.
/// </summary>
/// <param name="InputIds">[2B, T] int64 token ids, right-padded.</param>
/// <param name="AttentionMask">[2B, T] int64, 1 for real tokens.</param>
/// <param name="Targets">
/// [2B, T] int64: at position t the next token when it is a completion token, else
/// <see cref="TokenLogProbs.IgnoreIndex"/>; pass it to <see cref="TokenLogProbs.FromHidden"/> with the model's hidden
/// states of <see cref="InputIds"/> to get each completion token's log-probability.
/// </param>
/// <param name="Sources">Where each pair came from.</param>
internal sealed record PreferenceBatch(Tensor InputIds, Tensor AttentionMask, Tensor Targets, IReadOnlyList<SourceLocation> Sources) : IDisposable
{
    /// <summary>Number of pairs B.</summary>
    public int PairCount => Sources.Count;

    /// <summary>[2B, T] bool: the positions whose target is a completion token.</summary>
    public Tensor CompletionMask() => Targets.ne(TokenLogProbs.IgnoreIndex);

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (Tensor tensor in new[] { InputIds, AttentionMask, Targets })
            tensor.Dispose();
    }
}

/// <summary>
/// Several sequences packed into one row without padding (<see cref="PreferenceCollator.Pack"/>): pass
/// <see cref="SegmentIds"/> as the attention mask and <see cref="PositionIds"/> as the positions, so that each sequence
/// attends only to itself and starts at position 0. Owns its tensors; dispose it after the step.
/// </summary>
/// <param name="InputIds">[1, S] token ids of every sequence, back to back.</param>
/// <param name="SegmentIds">[1, S] 1..n: which sequence each token belongs to (the attention mask of a packed row).</param>
/// <param name="PositionIds">[1, S] positions restarting at 0 for each sequence.</param>
/// <param name="Targets">[1, S] the next token where it is a completion token of the same sequence, else <see cref="TokenLogProbs.IgnoreIndex"/>.</param>
/// <param name="SequenceLengths">Length of each packed sequence, in order (chosen rows first, then rejected).</param>
internal sealed record PackedBatch(Tensor InputIds, Tensor SegmentIds, Tensor PositionIds, Tensor Targets, IReadOnlyList<long> SequenceLengths) : IDisposable
{
    /// <summary>[n, S] bool: row k selects sequence k's completion positions (to sum per-sequence log-probabilities).</summary>
    public Tensor SequenceMasks()
    {
        using var scope = NewDisposeScope();
        Tensor ids = arange(1, SequenceLengths.Count + 1, dtype: ScalarType.Int64, device: SegmentIds.device).unsqueeze(1); // [n, 1]
        return SegmentIds.eq(ids).logical_and(Targets.ne(TokenLogProbs.IgnoreIndex)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (Tensor tensor in new[] { InputIds, SegmentIds, PositionIds, Targets })
            tensor.Dispose();
    }
}

/// <summary>Pads tokenized pairs into a <see cref="PreferenceBatch"/>.</summary>
internal static class PreferenceCollator
{
    /// <summary>Builds the batch.</summary>
    /// <param name="pairs">At least one pair.</param>
    /// <param name="padTokenId">Id written into padding (never scored: its mask and target say so).</param>
    /// <param name="device">Device of the tensors; CPU when null.</param>
    /// <exception cref="ArgumentException">No pairs, or a pair with an empty completion.</exception>
    public static PreferenceBatch Collate(IReadOnlyList<TokenizedPair> pairs, long padTokenId, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        if (pairs.Count == 0)
            throw new ArgumentException("A batch needs at least one pair.", nameof(pairs));
        var rows = new List<(int[] Prompt, int[] Completion)>(2 * pairs.Count);
        rows.AddRange(pairs.Select(p => (p.Prompt, p.Chosen)));
        rows.AddRange(pairs.Select(p => (p.Prompt, p.Rejected)));
        foreach (var (pair, i) in pairs.Select((p, i) => (p, i)))
            if (pair.Chosen.Length == 0 || pair.Rejected.Length == 0)
                throw new ArgumentException($"Pair {i} ({pair.Source}) has an empty completion.", nameof(pairs));

        PaddedRows padded = CompletionCollator.Pad(rows, padTokenId, device ?? CPU);
        return new PreferenceBatch(padded.InputIds, padded.AttentionMask, padded.Targets,
            pairs.Select(p => p.Source).ToList());
    }

    /// <summary>
    /// Packs every prompt + chosen, then every prompt + rejected, into one row with no padding: less compute than a
    /// padded batch when lengths vary (the attention still spans the row, but no token is wasted on padding).
    /// </summary>
    /// <exception cref="ArgumentException">No pairs, or a pair with an empty completion.</exception>
    public static PackedBatch Pack(IReadOnlyList<TokenizedPair> pairs, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        if (pairs.Count == 0)
            throw new ArgumentException("A batch needs at least one pair.", nameof(pairs));
        var rows = pairs.Select(p => (p.Prompt, Completion: p.Chosen)).Concat(pairs.Select(p => (p.Prompt, Completion: p.Rejected))).ToList();
        return PackRows(rows, device);
    }

    /// <summary>Packs prompt + completion rows into one row with segment ids and restarting positions.</summary>
    internal static PackedBatch PackRows(List<(int[] Prompt, int[] Completion)> rows, Device? device)
    {
        if (rows.Any(r => r.Completion.Length == 0))
            throw new ArgumentException("An example has an empty completion.", nameof(rows));
        var ids = new List<long>();
        var segments = new List<long>();
        var positions = new List<long>();
        var targets = new List<long>();
        for (int r = 0; r < rows.Count; r++)
        {
            var (prompt, completion) = rows[r];
            int length = prompt.Length + completion.Length;
            for (int t = 0; t < length; t++)
            {
                ids.Add(t < prompt.Length ? prompt[t] : completion[t - prompt.Length]);
                segments.Add(r + 1);
                positions.Add(t);
                int next = t + 1;
                targets.Add(next >= prompt.Length && next < length ? completion[next - prompt.Length] : TokenLogProbs.IgnoreIndex);
            }
        }
        Device targetDevice = device ?? CPU;
        Tensor Row(List<long> values) => tensor(values.ToArray(), device: targetDevice).unsqueeze(0).DetachFromDisposeScope();
        return new PackedBatch(Row(ids), Row(segments), Row(positions), Row(targets),
            rows.Select(r => (long)(r.Prompt.Length + r.Completion.Length)).ToArray());
    }
}

/// <summary>
/// A padded batch of single completions (SFT, or KTO with labels), and for KTO the mismatched pairs that estimate the
/// KL reference point: prompt i with the completion of example i − 1 (TRL rotates completions by one). Owns its tensors.
/// </summary>
internal sealed class CompletionBatch : IDisposable
{
    internal CompletionBatch(PaddedRows rows, Tensor desirable, PaddedRows? kl, IReadOnlyList<SourceLocation> sources)
    {
        InputIds = rows.InputIds;
        AttentionMask = rows.AttentionMask;
        Targets = rows.Targets;
        Desirable = desirable;
        KlInputIds = kl?.InputIds;
        KlAttentionMask = kl?.AttentionMask;
        KlTargets = kl?.Targets;
        Sources = sources;
    }

    /// <summary>[B, T] prompt + completion ids, right-padded.</summary>
    public Tensor InputIds { get; }

    /// <summary>[B, T] 1 for real tokens.</summary>
    public Tensor AttentionMask { get; }

    /// <summary>[B, T] next completion token or <see cref="TokenLogProbs.IgnoreIndex"/>.</summary>
    public Tensor Targets { get; }

    /// <summary>[B] bool KTO labels (all true for SFT).</summary>
    public Tensor Desirable { get; }

    /// <summary>[B, T'] mismatched prompt/completion ids, or null (batch of one, or not requested).</summary>
    public Tensor? KlInputIds { get; }

    /// <summary>[B, T'] mask of <see cref="KlInputIds"/>.</summary>
    public Tensor? KlAttentionMask { get; }

    /// <summary>[B, T'] targets of <see cref="KlInputIds"/>.</summary>
    public Tensor? KlTargets { get; }

    /// <summary>Where each example came from.</summary>
    public IReadOnlyList<SourceLocation> Sources { get; }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (Tensor? t in new[] { InputIds, AttentionMask, Targets, Desirable, KlInputIds, KlAttentionMask, KlTargets })
            t?.Dispose();
    }
}

internal sealed record PaddedRows(Tensor InputIds, Tensor AttentionMask, Tensor Targets);

/// <summary>Pads tokenized single completions into a <see cref="CompletionBatch"/>.</summary>
internal static class CompletionCollator
{
    /// <summary>Builds the batch.</summary>
    /// <param name="examples">At least one example.</param>
    /// <param name="padTokenId">Id written into padding.</param>
    /// <param name="klPairs">Also build KTO's mismatched pairs (needs at least two examples; a batch of one gets none).</param>
    /// <param name="device">Device of the tensors; CPU when null.</param>
    /// <param name="klPartners">
    /// The example whose completion pairs with each example's prompt, when the batch is one process's share of a larger
    /// one; null rotates within <paramref name="examples"/>. A batch of one without partners gets no pairs.
    /// </param>
    public static CompletionBatch Collate(IReadOnlyList<TokenizedCompletion> examples, long padTokenId, bool klPairs = false, Device? device = null,
        IReadOnlyList<TokenizedCompletion>? klPartners = null)
    {
        ArgumentNullException.ThrowIfNull(examples);
        if (examples.Count == 0)
            throw new ArgumentException("A batch needs at least one example.", nameof(examples));
        Device target = device ?? CPU;
        PaddedRows rows = Pad(examples.Select(e => (e.Prompt, e.Completion)).ToList(), padTokenId, target);
        if (klPartners is not null && klPartners.Count != examples.Count)
            throw new ArgumentException($"{klPartners.Count} KL partners for {examples.Count} examples.", nameof(klPartners));
        klPartners ??= examples.Count > 1 ? examples.Select((_, i) => examples[(i - 1 + examples.Count) % examples.Count]).ToList() : null;
        PaddedRows? kl = klPairs && klPartners is not null
            ? Pad(examples.Select((e, i) => (e.Prompt, klPartners[i].Completion)).ToList(), padTokenId, target)
            : null;
        Tensor desirable = tensor(examples.Select(e => e.Desirable).ToArray(), device: target).DetachFromDisposeScope();
        return new CompletionBatch(rows, desirable, kl, examples.Select(e => e.Source).ToList());
    }

    /// <summary>Packs completions into one row without padding (see <see cref="PackedBatch"/>).</summary>
    public static PackedBatch Pack(IReadOnlyList<TokenizedCompletion> examples, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(examples);
        if (examples.Count == 0)
            throw new ArgumentException("A batch needs at least one example.", nameof(examples));
        return PreferenceCollator.PackRows(examples.Select(e => (e.Prompt, e.Completion)).ToList(), device);
    }

    /// <summary>Right-pads prompt + completion rows; targets are the next token where it belongs to the completion.</summary>
    internal static PaddedRows Pad(List<(int[] Prompt, int[] Completion)> rows, long padTokenId, Device device)
    {
        if (rows.Any(r => r.Completion.Length == 0))
            throw new ArgumentException("An example has an empty completion.");
        int width = rows.Max(r => r.Prompt.Length + r.Completion.Length);
        var ids = new long[rows.Count, width];
        var mask = new long[rows.Count, width];
        var targets = new long[rows.Count, width];
        for (int r = 0; r < rows.Count; r++)
        {
            var (prompt, completion) = rows[r];
            int length = prompt.Length + completion.Length;
            for (int t = 0; t < width; t++)
            {
                ids[r, t] = t < prompt.Length ? prompt[t] : t < length ? completion[t - prompt.Length] : padTokenId;
                mask[r, t] = t < length ? 1 : 0;
                int next = t + 1; // position t predicts token t + 1: scored when that token belongs to the completion
                targets[r, t] = next >= prompt.Length && next < length ? completion[next - prompt.Length] : TokenLogProbs.IgnoreIndex;
            }
        }
        return new PaddedRows(tensor(ids, device: device).DetachFromDisposeScope(), tensor(mask, device: device).DetachFromDisposeScope(),
            tensor(targets, device: device).DetachFromDisposeScope());
    }
}
