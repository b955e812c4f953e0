using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Alignment.Kernels;

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
        var (logits, targets, valid, chunk) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (int)vars[3]);
        long rows = logits.shape[0];
        ScalarType accumulation = TokenLogProbs.AccumulationType(logits.dtype);

        var (logSumExp, target) = ChunkMath.ScoreChunks(rows, chunk, accumulation, logits.device,
            (start, length) => logits.narrow(0, start, length).to_type(accumulation), targets,
            ownsLogits: logits.dtype != accumulation); // a half-precision chunk is converted into a fresh tensor; a float32 one is the caller's

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
