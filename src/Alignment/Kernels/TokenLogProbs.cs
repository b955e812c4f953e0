using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Kernels;

/// <summary>
/// Log-probabilities of target tokens under a causal LM, computed without materialising a full
/// <c>log_softmax</c>: the hot path of every preference loss.
/// </summary>
/// <remarks>
/// <para>
/// <c>targets[b, t]</c> is the token scored by <c>logits[b, t]</c> (or by <c>hidden[b, t]</c>): shift the labels
/// left by one before calling, as Hugging Face does for causal LMs. A position counts when its mask is non-zero
/// and its target is not <see cref="IgnoreIndex"/>; every other position yields 0 and receives no gradient.
/// </para>
/// <para>
/// Inputs may be float32, float64, bfloat16 or float16 on any device. Reductions run in float32 (float64 for
/// float64 input) and the result has that dtype; gradients come back in each input's own dtype.
/// </para>
/// </remarks>
public static class TokenLogProbs
{
    /// <summary>The target id that marks a position to skip, as in PyTorch's cross entropy and TRL.</summary>
    public const long IgnoreIndex = -100;

    /// <summary>
    /// Pass as a chunk size to let the kernel pick one: at most 2^26 logits (256 MiB of float32) and at most 512 rows
    /// per chunk. Measured on a 2-core AVX2 CPU, fewer rows make the per-chunk weight traffic dominate (130 rows at
    /// V = 128 256 took 1.4× as long as 512), and more rows add memory without saving time.
    /// </summary>
    public const int AutoChunkSize = 0;

    internal const long AutoChunkElements = 1L << 26;
    const int AutoChunkMaxRows = 512;
    const int AutoChunkMinRows = 16;

    /// <summary>
    /// Per-token log-probabilities <c>log softmax(logits)[target]</c>, computed one row chunk at a time
    /// (log-sum-exp and the target logit in one pass); the backward pass forms <c>one_hot − softmax</c>
    /// chunk by chunk from the saved log-sum-exp instead of keeping a <c>[B, T, V]</c> intermediate.
    /// </summary>
    /// <param name="logits">[B, T, V] floating point.</param>
    /// <param name="targets">[B, T] integer token ids in [0, V), or <see cref="IgnoreIndex"/>.</param>
    /// <param name="mask">[B, T] optional; positions where it is 0 (or false) are skipped.</param>
    /// <param name="ignoreIndex">Target id that marks a skipped position.</param>
    /// <param name="chunkSize">Rows (tokens) per chunk; <see cref="AutoChunkSize"/> picks one from V.</param>
    /// <returns>[B, T] log-probabilities, 0 at skipped positions; float32 (float64 for float64 logits).</returns>
    /// <exception cref="ArgumentException">Shapes, dtypes or devices do not fit together.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A counted target lies outside [0, V), or chunkSize is negative.</exception>
    public static Tensor FromLogits(Tensor logits, Tensor targets, Tensor? mask = null, long ignoreIndex = IgnoreIndex,
        int chunkSize = AutoChunkSize)
    {
        var (batch, time, vocab) = KernelInputs.RequireLogits(logits);
        using var scope = NewDisposeScope();
        var (safeTargets, valid) = PrepareTargets(targets, mask, batch, time, vocab, logits.device, ignoreIndex);
        Tensor flat = logits.reshape(batch * time, vocab); // [N, V]
        Tensor result = LogitGatherFunction.apply(flat, safeTargets, valid, ResolveChunk(chunkSize, vocab));
        return result.reshape(batch, time).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Per-token log-probabilities from the final hidden states and the lm_head weight, never materialising the
    /// full logits: the projection, log-sum-exp and target logit are computed one token chunk at a time, skipping
    /// masked positions, and the backward pass recomputes each chunk's logits to produce the gradients of
    /// <paramref name="hidden"/> and <paramref name="lmHeadWeight"/> chunk by chunk. The logits are
    /// <c>hidden · lmHeadWeightᵀ</c> as they are: for a model with final-logit soft-capping (Gemma 2,
    /// <see cref="Models.DecoderConfig.FinalLogitSoftcapping"/>) use <see cref="FromLogits"/> on <c>model.Logits(hidden)</c>,
    /// as the trainers do.
    /// </summary>
    /// <param name="hidden">[B, T, H] final hidden states (after the last norm).</param>
    /// <param name="lmHeadWeight">[V, H] output projection (no bias), same dtype and device as hidden.</param>
    /// <param name="targets">[B, T] integer token ids in [0, V), or <see cref="IgnoreIndex"/>.</param>
    /// <param name="mask">[B, T] optional; positions where it is 0 (or false) are skipped.</param>
    /// <param name="chunkSize">Tokens per chunk; <see cref="AutoChunkSize"/> picks one from V.</param>
    /// <param name="ignoreIndex">Target id that marks a skipped position.</param>
    /// <returns>[B, T] log-probabilities, 0 at skipped positions; float32 (float64 for float64 input).</returns>
    /// <exception cref="ArgumentException">Shapes, dtypes or devices do not fit together.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A counted target lies outside [0, V), or chunkSize is negative.</exception>
    public static Tensor FromHidden(Tensor hidden, Tensor lmHeadWeight, Tensor targets, Tensor? mask = null,
        int chunkSize = AutoChunkSize, long ignoreIndex = IgnoreIndex)
    {
        var (batch, time, width, vocab) = KernelInputs.RequireHiddenAndHead(hidden, lmHeadWeight);
        using var scope = NewDisposeScope();
        var (safeTargets, valid) = PrepareTargets(targets, mask, batch, time, vocab, hidden.device, ignoreIndex);
        Tensor flat = hidden.reshape(batch * time, width); // [N, H]
        bool hiddenGradientOnly = is_grad_enabled() && hidden.requires_grad && !lmHeadWeight.requires_grad;
        Tensor result = HiddenGatherFunction.apply(flat, lmHeadWeight, safeTargets, valid, ResolveChunk(chunkSize, vocab), hiddenGradientOnly);
        return result.reshape(batch, time).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// WPO log-weight of each sequence (Zhou et al. 2024, eq. 2, as TRL computes it): the mean over its counted tokens
    /// of <c>log p(target) − log Σ_v p(v)²</c>, computed chunk by chunk without gradient. Feed it to
    /// <c>CompletionLogProbs.WpoLogWeights</c> for losses with <c>use_weighting</c>.
    /// </summary>
    /// <param name="logits">[B, T, V] floating point.</param>
    /// <param name="targets">[B, T] integer token ids in [0, V), or <see cref="IgnoreIndex"/>.</param>
    /// <param name="mask">[B, T] optional; positions where it is 0 are skipped.</param>
    /// <param name="ignoreIndex">Target id that marks a skipped position.</param>
    /// <param name="chunkSize">Rows per chunk; <see cref="AutoChunkSize"/> picks one from V.</param>
    /// <returns>[B] float32 (float64 for float64 logits); 0 for a sequence with no counted token.</returns>
    public static Tensor WpoLogWeights(Tensor logits, Tensor targets, Tensor? mask = null, long ignoreIndex = IgnoreIndex,
        int chunkSize = AutoChunkSize)
    {
        var (batch, time, vocab) = KernelInputs.RequireLogits(logits);
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        var (safeTargets, valid) = PrepareTargets(targets, mask, batch, time, vocab, logits.device, ignoreIndex);
        Tensor flat = logits.reshape(batch * time, vocab);
        ScalarType accumulation = AccumulationType(logits.dtype);
        Tensor adjusted = SquaredMassAdjusted(batch * time, ResolveChunk(chunkSize, vocab), safeTargets, accumulation, logits.device,
            (start, length) => flat.narrow(0, start, length).to_type(accumulation));
        return SequenceMean(adjusted.reshape(batch, time), valid.reshape(batch, time)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <see cref="WpoLogWeights(Tensor, Tensor, Tensor?, long, int)"/> from hidden states and the lm_head weight, never
    /// materialising the full logits.
    /// </summary>
    /// <param name="hidden">[B, T, H] final hidden states.</param>
    /// <param name="lmHeadWeight">[V, H] output projection, same dtype and device as hidden.</param>
    /// <param name="targets">[B, T] integer token ids in [0, V), or <see cref="IgnoreIndex"/>.</param>
    /// <param name="mask">[B, T] optional; positions where it is 0 are skipped.</param>
    /// <param name="chunkSize">Tokens per chunk; <see cref="AutoChunkSize"/> picks one from V.</param>
    /// <param name="ignoreIndex">Target id that marks a skipped position.</param>
    /// <returns>[B] float32 (float64 for float64 input).</returns>
    public static Tensor WpoLogWeightsFromHidden(Tensor hidden, Tensor lmHeadWeight, Tensor targets, Tensor? mask = null,
        int chunkSize = AutoChunkSize, long ignoreIndex = IgnoreIndex)
    {
        var (batch, time, width, vocab) = KernelInputs.RequireHiddenAndHead(hidden, lmHeadWeight);
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        var (safeTargets, valid) = PrepareTargets(targets, mask, batch, time, vocab, hidden.device, ignoreIndex);
        Tensor flat = hidden.reshape(batch * time, width);
        ScalarType accumulation = AccumulationType(hidden.dtype);
        Tensor adjusted = SquaredMassAdjusted(batch * time, ResolveChunk(chunkSize, vocab), safeTargets, accumulation, hidden.device,
            (start, length) => flat.narrow(0, start, length).mm(lmHeadWeight.t()).to_type(accumulation));
        return SequenceMean(adjusted.reshape(batch, time), valid.reshape(batch, time)).MoveToOuterDisposeScope();
    }

    /// <summary>Per row: <c>log p(target) − log Σ p² = target − lse − (lse(2x) − 2·lse) = target + lse − lse(2x)</c>.</summary>
    static Tensor SquaredMassAdjusted(long rows, int chunk, Tensor targets, ScalarType accumulation, Device device,
        Func<long, long, Tensor> logitsOf)
    {
        Tensor adjusted = empty(rows, accumulation, device);
        for (long start = 0; start < rows; start += chunk)
        {
            using var scope = NewDisposeScope();
            long length = Math.Min(chunk, rows - start);
            Tensor block = logitsOf(start, length);                                    // [C, V]
            var (lse, target) = ChunkMath.Score(block, targets.narrow(0, start, length));
            Tensor squaredMass = block.mul(2).logsumexp(1);                             // log Σ exp(2x)
            adjusted.narrow(0, start, length).copy_(target.add(lse).sub(squaredMass));
        }
        return adjusted;
    }

    /// <summary>Which positions count: mask non-zero and target not <paramref name="ignoreIndex"/>.</summary>
    /// <param name="targets">[B, T] integer token ids.</param>
    /// <param name="mask">[B, T] optional.</param>
    /// <param name="ignoreIndex">Target id that marks a skipped position.</param>
    /// <returns>[B, T] bool.</returns>
    public static Tensor ValidMask(Tensor targets, Tensor? mask = null, long ignoreIndex = IgnoreIndex)
    {
        ArgumentNullException.ThrowIfNull(targets);
        using var scope = NewDisposeScope();
        Tensor valid = targets.ne(ignoreIndex);
        if (mask is not null)
        {
            if (!mask.shape.SequenceEqual(targets.shape))
                throw new ArgumentException($"mask has shape {KernelInputs.Shape(mask)}; expected {KernelInputs.Shape(targets)} like targets.", nameof(mask));
            valid = valid.logical_and(mask.to_type(ScalarType.Bool));
        }
        return valid.MoveToOuterDisposeScope();
    }

    /// <summary>Sum of each sequence's per-token log-probabilities over the counted positions.</summary>
    /// <param name="tokenLogProbs">[B, T] from <see cref="FromLogits"/> or <see cref="FromHidden"/>.</param>
    /// <param name="mask">[B, T] positions that count (bool or numeric).</param>
    /// <returns>[B], in the dtype of <paramref name="tokenLogProbs"/>.</returns>
    public static Tensor SequenceSum(Tensor tokenLogProbs, Tensor mask)
    {
        KernelInputs.RequireSameShape(tokenLogProbs, mask);
        using var scope = NewDisposeScope();
        Tensor counted = tokenLogProbs.where(mask.to_type(ScalarType.Bool), 0.0);
        return counted.sum(1).MoveToOuterDisposeScope();
    }

    /// <summary>Number of counted positions per sequence.</summary>
    /// <param name="mask">[B, T] positions that count (bool or numeric).</param>
    /// <returns>[B] int64.</returns>
    public static Tensor TokenCounts(Tensor mask)
    {
        ArgumentNullException.ThrowIfNull(mask);
        KernelInputs.RequireRank(mask, 2, nameof(mask), "[B, T]");
        using var scope = NewDisposeScope();
        return mask.to_type(ScalarType.Bool).sum(1, type: ScalarType.Int64).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Mean of each sequence's per-token log-probabilities over the counted positions (the length-normalised
    /// log-probability used by IPO, SimPO and ORPO). A sequence with no counted position has mean 0.
    /// </summary>
    /// <param name="tokenLogProbs">[B, T] from <see cref="FromLogits"/> or <see cref="FromHidden"/>.</param>
    /// <param name="mask">[B, T] positions that count (bool or numeric).</param>
    /// <returns>[B], in the dtype of <paramref name="tokenLogProbs"/>.</returns>
    public static Tensor SequenceMean(Tensor tokenLogProbs, Tensor mask)
    {
        KernelInputs.RequireSameShape(tokenLogProbs, mask);
        using var scope = NewDisposeScope();
        Tensor sum = SequenceSum(tokenLogProbs, mask);
        Tensor count = TokenCounts(mask).clamp_min(1).to_type(sum.dtype);
        return sum.div(count).MoveToOuterDisposeScope();
    }

    /// <summary>The dtype reductions run in for inputs of <paramref name="dtype"/>.</summary>
    internal static ScalarType AccumulationType(ScalarType dtype) =>
        dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;

    internal static int ResolveChunk(int chunkSize, long vocab)
    {
        if (chunkSize < 0)
            throw new ArgumentOutOfRangeException(nameof(chunkSize), chunkSize, "chunkSize must be positive, or AutoChunkSize (0).");
        if (chunkSize > 0)
            return chunkSize;
        return (int)Math.Clamp(AutoChunkElements / Math.Max(vocab, 1), AutoChunkMinRows, AutoChunkMaxRows);
    }

    /// <summary>Validates targets and mask; returns targets with skipped ids replaced by 0, and the [N] bool mask.</summary>
    internal static (Tensor SafeTargets, Tensor Valid) PrepareTargets(Tensor targets, Tensor? mask, long batch, long time, long vocab,
        Device device, long ignoreIndex)
    {
        ArgumentNullException.ThrowIfNull(targets);
        if (targets.dim() != 2 || targets.shape[0] != batch || targets.shape[1] != time)
            throw new ArgumentException($"targets has shape {KernelInputs.Shape(targets)}; expected [{batch}, {time}].", nameof(targets));
        if (!KernelInputs.IsInteger(targets.dtype))
            throw new ArgumentException($"targets must hold integer token ids, not {targets.dtype}.", nameof(targets));
        if (!KernelInputs.SameDevice(targets.device, device))
            throw new ArgumentException($"targets is on {targets.device} but the scores are on {device}.", nameof(targets));
        if (mask is not null && !KernelInputs.SameDevice(mask.device, device))
            throw new ArgumentException($"mask is on {mask.device} but the scores are on {device}.", nameof(mask));
        if (vocab < 1)
            throw new ArgumentException("The vocabulary dimension V must be at least 1.", nameof(targets));

        Tensor ids = targets.to_type(ScalarType.Int64);
        Tensor valid = ValidMask(ids, mask, ignoreIndex);
        Tensor outOfRange = valid.logical_and(ids.lt(0).logical_or(ids.ge(vocab)));
        if (outOfRange.any().item<bool>())
        {
            long[] at = outOfRange.nonzero()[0].data<long>().ToArray();
            long id = ids[at[0], at[1]].item<long>();
            throw new ArgumentOutOfRangeException(nameof(targets), id,
                $"targets[{at[0]}, {at[1]}] = {id} lies outside the vocabulary [0, {vocab}) and is not the ignore index {ignoreIndex}.");
        }
        Tensor safe = ids.where(valid, 0L);
        return (safe.reshape(batch * time), valid.reshape(batch * time));
    }
}
