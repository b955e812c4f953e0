using static TorchSharp.torch;

namespace Alignment.Kernels;

/// <summary>The per-chunk arithmetic shared by both gather kernels, on logits already in the accumulation dtype.</summary>
internal static class ChunkMath
{
    /// <summary>Log-sum-exp and target logit of each row.</summary>
    /// <param name="logits">[C, V] accumulation dtype.</param>
    /// <param name="targets">[C] int64 in [0, V).</param>
    /// <returns>Both [C].</returns>
    public static (Tensor LogSumExp, Tensor Target) Score(Tensor logits, Tensor targets)
    {
        Tensor logSumExp = logits.logsumexp(1);                          // [C]
        Tensor target = logits.gather(1, targets.unsqueeze(1)).squeeze(1); // [C]
        return (logSumExp, target);
    }

    /// <summary>
    /// Log-sum-exp, target logit and row maximum of each row, leaving <c>exp(logits − max)</c> in the logits' storage:
    /// no second [C, V] tensor, where <c>logsumexp</c> makes one for its shifted exponentials.
    /// </summary>
    /// <param name="logits">[C, V] accumulation dtype; overwritten.</param>
    /// <param name="targets">[C] int64 in [0, V).</param>
    /// <returns>All three [C].</returns>
    public static (Tensor LogSumExp, Tensor Target, Tensor Max) ScoreInPlace(Tensor logits, Tensor targets)
    {
        Tensor target = logits.gather(1, targets.unsqueeze(1)).squeeze(1); // [C]
        Tensor max = logits.amax([1]);                                     // [C]
        logits.sub_(max.unsqueeze(1)).exp_();
        Tensor logSumExp = logits.sum(1).log_().add_(max);
        return (logSumExp, target, max);
    }

    /// <summary>
    /// <see cref="LogitGradient"/> from shifted exponentials <c>exp(logits − shift)</c> (as <see cref="ScoreInPlace"/> leaves
    /// them), built in their storage: softmax = exponentials · exp(shift − lse).
    /// </summary>
    /// <param name="exponentials">[C, V] accumulation dtype; overwritten.</param>
    /// <param name="shift">[C] what was subtracted before exponentiating.</param>
    /// <param name="logSumExp">[C].</param>
    /// <param name="targets">[C] int64.</param>
    /// <param name="upstream">[C] incoming gradient.</param>
    public static Tensor LogitGradientFromExponentials(Tensor exponentials, Tensor shift, Tensor logSumExp, Tensor targets, Tensor upstream)
    {
        Tensor rowScale = shift.sub(logSumExp).exp_().mul_(upstream).neg_(); // −g · exp(shift − lse)
        exponentials.mul_(rowScale.unsqueeze(1));
        exponentials.scatter_add_(1, targets.unsqueeze(1), upstream.unsqueeze(1));
        return exponentials;
    }

    /// <summary>
    /// Gradient of <c>Σ_r g_r · log softmax(logits_r)[target_r]</c> with respect to the logits:
    /// <c>g · (one_hot(target) − softmax)</c>, as one [C, V] tensor.
    /// </summary>
    /// <param name="logits">[C, V] accumulation dtype.</param>
    /// <param name="logSumExp">[C] saved from the forward pass.</param>
    /// <param name="targets">[C] int64.</param>
    /// <param name="upstream">[C] incoming gradient, 0 at skipped rows.</param>
    /// <param name="overwrite">Build the result in <paramref name="logits"/>'s own storage (the caller owns it).</param>
    public static Tensor LogitGradient(Tensor logits, Tensor logSumExp, Tensor targets, Tensor upstream, bool overwrite)
    {
        Tensor shift = logSumExp.unsqueeze(1);
        Tensor gradient = (overwrite ? logits.sub_(shift) : logits.sub(shift)).exp_(); // [C, V] softmax
        Tensor column = upstream.unsqueeze(1);                              // [C, 1]
        gradient.mul_(column.neg());
        gradient.scatter_add_(1, targets.unsqueeze(1), column);
        return gradient;
    }

    /// <summary>
    /// Log-sum-exp and target logit of <paramref name="rows"/> rows, <paramref name="chunk"/> rows at a time, each
    /// chunk's logits made by <paramref name="logitsOf"/>(start, length) in the accumulation dtype and freed with it.
    /// </summary>
    /// <param name="rows">Rows to score.</param>
    /// <param name="chunk">Rows per chunk.</param>
    /// <param name="accumulation">dtype of the results.</param>
    /// <param name="device">Device of the results.</param>
    /// <param name="logitsOf">[C, V] logits of rows start..start+length, in the accumulation dtype.</param>
    /// <param name="targets">[rows] int64.</param>
    /// <param name="ownsLogits">
    /// <paramref name="logitsOf"/> makes fresh tensors (not views of the caller's logits): each is then scored in place
    /// (<see cref="ScoreInPlace"/>), which on CPU takes a fraction of <c>logsumexp</c>'s time and no temporary.
    /// </param>
    /// <param name="withChunk">With <paramref name="ownsLogits"/> only: called with (start, the chunk's
    /// <c>exp(logits − max)</c>, their log-sum-exp, the row maxima) after scoring; it may overwrite the exponentials.</param>
    /// <returns>Both [rows] in <paramref name="accumulation"/>.</returns>
    public static (Tensor LogSumExp, Tensor Target) ScoreChunks(long rows, int chunk, ScalarType accumulation, Device device,
        Func<long, long, Tensor> logitsOf, Tensor targets, bool ownsLogits, Action<long, Tensor, Tensor, Tensor>? withChunk = null)
    {
        if (withChunk is not null && !ownsLogits)
            throw new ArgumentException("withChunk needs logits the kernel owns.", nameof(withChunk));
        Tensor logSumExp = empty(rows, accumulation, device);
        Tensor target = empty(rows, accumulation, device);
        for (long start = 0; start < rows; start += chunk)
        {
            using var scope = NewDisposeScope();
            long length = Math.Min(chunk, rows - start);
            Tensor logits = logitsOf(start, length);
            Tensor chunkTargets = targets.narrow(0, start, length), lse, picked, max = null!;
            if (ownsLogits)
                (lse, picked, max) = ScoreInPlace(logits, chunkTargets);
            else
                (lse, picked) = Score(logits, chunkTargets);
            logSumExp.narrow(0, start, length).copy_(lse);
            target.narrow(0, start, length).copy_(picked);
            withChunk?.Invoke(start, logits, lse, max); // only with ownsLogits, checked above
        }
        return (logSumExp, target);
    }
}
