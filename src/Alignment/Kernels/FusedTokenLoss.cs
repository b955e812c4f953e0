using static TorchSharp.torch;

namespace Alignment.Kernels;

/// <summary>
/// Per-token log-probabilities from the final hidden states with the loss's gradients formed in the forward pass: the
/// fused lm_head path for losses that are a sum of terms each depending on one group of sequences only (a
/// chosen/rejected pair for the DPO family, SimPO/CPO and ORPO; one sequence for SFT). Each group's logits are made
/// once, chunk by chunk; while they are at hand the caller's delegate gives the loss's gradient with respect to the
/// group's log-probabilities, and the kernel turns it into the gradients of the hidden states and the lm_head weight:
/// three matmuls as in the naive path, and no logits kept beyond one group's (within a budget; chunks past it are made again).
/// </summary>
internal static class FusedTokenLoss
{
    /// <summary>Default budget for one group's kept logits: 2^26 elements (256 MiB of float32), as one auto-sized chunk.</summary>
    public const long DefaultCacheElements = TokenLogProbs.AutoChunkElements;

    /// <summary>What <see cref="GroupLossFunction"/> needs beyond its tensors.</summary>
    /// <param name="Groups">Sequence indices of each group; disjoint.</param>
    /// <param name="Time">T, the padded length.</param>
    /// <param name="Chunk">Rows per chunk.</param>
    /// <param name="CacheElements">Logit elements of one group kept between its two passes.</param>
    /// <param name="GradientOf">(group, per-token values [N] so far) → the loss's gradient [N] (only the group's rows are read).</param>
    /// <param name="Known">The loss's gradient [R, T] when it does not depend on the values (a mean NLL): then each chunk
    /// is back-propagated as soon as it is scored, in one pass, and <paramref name="GradientOf"/> is not called.</param>
    internal sealed record Plan(IReadOnlyList<IReadOnlyList<int>> Groups, long Time, int Chunk, long CacheElements,
        Func<int, Tensor, Tensor> GradientOf, Tensor? Known = null);

    /// <summary>
    /// Computes every counted position's log-probability and, when the hidden states or the weight need a gradient, the
    /// loss's gradients group by group.
    /// </summary>
    /// <param name="hidden">[R, T, H] final hidden states.</param>
    /// <param name="lmHeadWeight">[V, H] output projection, same dtype and device as hidden.</param>
    /// <param name="targets">[R, T] token ids in [0, V), or <see cref="TokenLogProbs.IgnoreIndex"/> where not scored.</param>
    /// <param name="groups">Sequences (indices into R) whose log-probabilities the loss couples; each sequence in at most one group.</param>
    /// <param name="gradientOf">
    /// (group, per-token log-probabilities [R, T] with every earlier group's rows and this group's filled in, detached)
    /// → the loss's gradient with respect to them, [R, T]; only the group's rows are read. It must not depend on
    /// the values of rows outside the group, which are still 0 for later groups.
    /// </param>
    /// <param name="chunkSize">Rows per chunk; <see cref="TokenLogProbs.AutoChunkSize"/> picks one from V.</param>
    /// <param name="cacheElements">Logit elements of one group kept from the first pass to the second.</param>
    /// <returns>The per-token log-probabilities [R, T] (detached; 0 where not scored) and a zero scalar to add to the
    /// loss: its backward delivers the gradients of the hidden states and the weight times the incoming gradient.</returns>
    /// <exception cref="ArgumentException">Shapes, dtypes or devices do not fit, or a group names a sequence outside [0, R) or twice.</exception>
    public static (Tensor PerToken, Tensor Gradient) Run(Tensor hidden, Tensor lmHeadWeight, Tensor targets,
        IReadOnlyList<IReadOnlyList<int>> groups, Func<int, Tensor, Tensor> gradientOf,
        int chunkSize = TokenLogProbs.AutoChunkSize, long cacheElements = DefaultCacheElements)
    {
        ArgumentNullException.ThrowIfNull(groups);
        ArgumentNullException.ThrowIfNull(gradientOf);
        return Apply(hidden, lmHeadWeight, targets, groups, gradientOf, null, chunkSize, cacheElements);
    }

    /// <summary>
    /// As <see cref="Run(Tensor, Tensor, Tensor, IReadOnlyList{IReadOnlyList{int}}, Func{int, Tensor, Tensor}, int, long)"/>
    /// for a loss whose gradient with respect to the log-probabilities is known before they are (a mean NLL: −1/N at
    /// each scored position): one pass, each chunk back-propagated as soon as it is scored, nothing kept.
    /// </summary>
    /// <param name="hidden">[R, T, H] final hidden states.</param>
    /// <param name="lmHeadWeight">[V, H] output projection.</param>
    /// <param name="targets">[R, T] token ids, or <see cref="TokenLogProbs.IgnoreIndex"/> where not scored.</param>
    /// <param name="gradient">[R, T] the loss's gradient with respect to each per-token log-probability.</param>
    /// <param name="chunkSize">Rows per chunk; <see cref="TokenLogProbs.AutoChunkSize"/> picks one from V.</param>
    public static (Tensor PerToken, Tensor Gradient) Run(Tensor hidden, Tensor lmHeadWeight, Tensor targets, Tensor gradient,
        int chunkSize = TokenLogProbs.AutoChunkSize)
    {
        ArgumentNullException.ThrowIfNull(gradient);
        ArgumentNullException.ThrowIfNull(targets);
        if (!gradient.shape.SequenceEqual(targets.shape))
            throw new ArgumentException($"gradient has shape {KernelInputs.Shape(gradient)}; expected {KernelInputs.Shape(targets)} like targets.", nameof(gradient));
        IReadOnlyList<int> all = Enumerable.Range(0, (int)targets.shape[0]).ToList();
        return Apply(hidden, lmHeadWeight, targets, [all], (_, _) => gradient, gradient, chunkSize, 0);
    }

    static (Tensor PerToken, Tensor Gradient) Apply(Tensor hidden, Tensor lmHeadWeight, Tensor targets, IReadOnlyList<IReadOnlyList<int>> groups,
        Func<int, Tensor, Tensor> gradientOf, Tensor? known, int chunkSize, long cacheElements)
    {
        var (batch, time, width, vocab) = KernelInputs.RequireHiddenAndHead(hidden, lmHeadWeight);
        RequireDisjoint(groups, batch);
        using var scope = NewDisposeScope();
        var (safeTargets, valid) = TokenLogProbs.PrepareTargets(targets, null, batch, time, vocab, hidden.device, TokenLogProbs.IgnoreIndex);
        Tensor perToken = zeros(batch * time, TokenLogProbs.AccumulationType(hidden.dtype), hidden.device); // [N]
        var plan = new Plan(groups, time, TokenLogProbs.ResolveChunk(chunkSize, vocab), cacheElements,
            (group, values) => gradientOf(group, values.detach().reshape(batch, time)), known);
        Tensor gradient = GroupLossFunction.apply(hidden.reshape(batch * time, width), lmHeadWeight, safeTargets, valid, plan, perToken);
        return (perToken.reshape(batch, time).MoveToOuterDisposeScope(), gradient.MoveToOuterDisposeScope());
    }

    /// <summary>Groups of a paired batch laid out chosen rows 0..B−1 then rejected rows B..2B−1: pair i is {i, B + i}.</summary>
    public static IReadOnlyList<IReadOnlyList<int>> Pairs(int pairs) =>
        Enumerable.Range(0, pairs).Select(i => (IReadOnlyList<int>)[i, pairs + i]).ToList();

    /// <summary>One group per sequence.</summary>
    public static IReadOnlyList<IReadOnlyList<int>> Sequences(int count) =>
        Enumerable.Range(0, count).Select(i => (IReadOnlyList<int>)[i]).ToList();

    static void RequireDisjoint(IReadOnlyList<IReadOnlyList<int>> groups, long rows)
    {
        var seen = new HashSet<int>();
        for (int g = 0; g < groups.Count; g++)
            foreach (int sequence in groups[g])
            {
                if (sequence < 0 || sequence >= rows)
                    throw new ArgumentException($"groups[{g}] names sequence {sequence}, outside [0, {rows}).", nameof(groups));
                if (!seen.Add(sequence))
                    throw new ArgumentException($"groups[{g}] names sequence {sequence}, which an earlier group holds.", nameof(groups));
            }
    }
}
