using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

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
}

/// <summary>
/// Autograd function behind <see cref="TokenLogProbs.FromLogits"/>. Saves only the logits (the caller already
/// holds them), the targets and a [N] log-sum-exp.
/// </summary>
internal sealed class LogitGatherFunction : SingleTensorFunction<LogitGatherFunction>
{
    public override string Name => nameof(LogitGatherFunction);

    /// <param name="ctx">Autograd context.</param>
    /// <param name="vars">logits [N, V], targets [N] int64 (0 at skipped rows), valid [N] bool, chunk size (int).</param>
    /// <returns>[N] log-probabilities in the accumulation dtype, 0 at skipped rows.</returns>
    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var logits = (Tensor)vars[0];
        var targets = (Tensor)vars[1];
        var valid = (Tensor)vars[2];
        int chunk = (int)vars[3];
        long rows = logits.shape[0];
        ScalarType accumulation = TokenLogProbs.AccumulationType(logits.dtype);

        Tensor logSumExp = empty(rows, accumulation, logits.device);
        Tensor target = empty(rows, accumulation, logits.device);
        for (long start = 0; start < rows; start += chunk)
        {
            using var scope = NewDisposeScope();
            long length = Math.Min(chunk, rows - start);
            Tensor block = logits.narrow(0, start, length).to_type(accumulation);
            var (lse, picked) = ChunkMath.Score(block, targets.narrow(0, start, length));
            logSumExp.narrow(0, start, length).copy_(lse);
            target.narrow(0, start, length).copy_(picked);
        }

        ctx.save_for_backward([logits, targets, valid, logSumExp]);
        ctx.save_data("chunk", chunk);
        return target.sub(logSumExp).where(valid, 0.0);
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
    {
        using var scope = NewDisposeScope();
        List<Tensor> saved = ctx.get_saved_variables();
        Tensor logits = saved[0], targets = saved[1], valid = saved[2], logSumExp = saved[3];
        int chunk = (int)ctx.get_data("chunk");
        long rows = logits.shape[0];
        ScalarType accumulation = logSumExp.dtype;

        Tensor upstream = gradOutput.to_type(accumulation).where(valid, 0.0); // [N]
        Tensor gradient = empty_like(logits);                                  // [N, V] in the logits' dtype
        for (long start = 0; start < rows; start += chunk)
        {
            using var inner = NewDisposeScope();
            long length = Math.Min(chunk, rows - start);
            Tensor block = logits.narrow(0, start, length).to_type(accumulation);
            Tensor part = ChunkMath.LogitGradient(block, logSumExp.narrow(0, start, length),
                targets.narrow(0, start, length), upstream.narrow(0, start, length), overwrite: false); // block may view the input
            Tensor counted = valid.narrow(0, start, length);
            if (!counted.all().item<bool>())
                part.masked_fill_(counted.logical_not().unsqueeze(1), 0.0); // padding logits may be NaN: 0·NaN is not 0
            gradient.narrow(0, start, length).copy_(part);
        }
        return [gradient.MoveToOuterDisposeScope(), null!, null!, null!];
    }
}

/// <summary>
/// Autograd function behind <see cref="TokenLogProbs.FromHidden"/>: never holds more than one [C, V] chunk of
/// logits. Saves the hidden states and weight (held by the caller anyway), the counted rows, and a log-sum-exp
/// per counted row.
/// </summary>
internal sealed class HiddenGatherFunction : SingleTensorFunction<HiddenGatherFunction>
{
    public override string Name => nameof(HiddenGatherFunction);

    /// <param name="ctx">Autograd context.</param>
    /// <param name="vars">hidden [N, H], weight [V, H], targets [N] int64, valid [N] bool, chunk size (int).</param>
    /// <returns>[N] log-probabilities in the accumulation dtype, 0 at skipped rows.</returns>
    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var hidden = (Tensor)vars[0];
        var weight = (Tensor)vars[1];
        var targets = (Tensor)vars[2];
        var valid = (Tensor)vars[3];
        int chunk = (int)vars[4];
        ScalarType accumulation = TokenLogProbs.AccumulationType(hidden.dtype);

        Tensor rows = valid.nonzero().squeeze(1);        // [M] counted rows only: padding costs nothing
        Tensor rowTargets = targets.index_select(0, rows); // [M]
        long count = rows.shape[0];
        Tensor logSumExp = empty(count, accumulation, hidden.device);
        Tensor target = empty(count, accumulation, hidden.device);
        for (long start = 0; start < count; start += chunk)
        {
            using var scope = NewDisposeScope();
            long length = Math.Min(chunk, count - start);
            Tensor states = hidden.index_select(0, rows.narrow(0, start, length)); // [C, H]
            Tensor block = Project(states, weight, accumulation);                   // [C, V]
            var (lse, picked) = ChunkMath.Score(block, rowTargets.narrow(0, start, length));
            logSumExp.narrow(0, start, length).copy_(lse);
            target.narrow(0, start, length).copy_(picked);
        }

        ctx.save_for_backward([hidden, weight, rows, rowTargets, logSumExp]);
        ctx.save_data("chunk", chunk);
        ctx.save_data("hiddenGrad", hidden.requires_grad);
        ctx.save_data("weightGrad", weight.requires_grad);
        Tensor result = zeros(hidden.shape[0], accumulation, hidden.device);
        return result.index_copy_(0, rows, target.sub(logSumExp));
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
    {
        using var scope = NewDisposeScope();
        List<Tensor> saved = ctx.get_saved_variables();
        Tensor hidden = saved[0], weight = saved[1], rows = saved[2], rowTargets = saved[3], logSumExp = saved[4];
        int chunk = (int)ctx.get_data("chunk");
        bool wantHidden = (bool)ctx.get_data("hiddenGrad");
        bool wantWeight = (bool)ctx.get_data("weightGrad");
        ScalarType accumulation = logSumExp.dtype;
        long count = rows.shape[0];

        Tensor upstream = gradOutput.to_type(accumulation).index_select(0, rows);                            // [M]
        Tensor? hiddenGradient = wantHidden ? zeros_like(hidden) : null;                                     // [N, H]
        Tensor? weightGradient = wantWeight ? zeros(weight.shape, accumulation, weight.device) : null;       // [V, H]
        for (long start = 0; start < count; start += chunk)
        {
            using var inner = NewDisposeScope();
            long length = Math.Min(chunk, count - start);
            Tensor chunkRows = rows.narrow(0, start, length);
            Tensor states = hidden.index_select(0, chunkRows);  // [C, H]
            Tensor block = Project(states, weight, accumulation); // [C, V] recomputed
            Tensor logitGradient = ChunkMath.LogitGradient(block, logSumExp.narrow(0, start, length),
                rowTargets.narrow(0, start, length), upstream.narrow(0, start, length), overwrite: true).to_type(weight.dtype);
            if (hiddenGradient is not null)
                hiddenGradient.index_copy_(0, chunkRows, logitGradient.mm(weight)); // [C, H]
            if (weightGradient is not null)
            {
                if (weight.dtype == accumulation)
                    weightGradient.addmm_(logitGradient.t(), states);
                else
                    weightGradient.add_(logitGradient.t().mm(states).to_type(accumulation)); // low-precision matmul, float32 sum
            }
        }
        Tensor? weightResult = weightGradient?.to_type(weight.dtype);
        return [hiddenGradient?.MoveToOuterDisposeScope()!, weightResult?.MoveToOuterDisposeScope()!, null!, null!, null!];
    }

    /// <summary>Logits [C, V] of hidden states [C, H], in the accumulation dtype; the matmul runs in the weight's dtype.</summary>
    static Tensor Project(Tensor states, Tensor weight, ScalarType accumulation) =>
        states.mm(weight.t()).to_type(accumulation);
}
