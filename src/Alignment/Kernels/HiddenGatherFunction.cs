using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Alignment.Kernels;

/// <summary>
/// Autograd function behind <see cref="TokenLogProbs.FromHidden"/>: never holds more than one [C, V] chunk of
/// logits. Saves the hidden states and weight (held by the caller anyway), the counted rows, and a log-sum-exp
/// per counted row. When only the hidden states need a gradient (a frozen lm_head: LoRA), the forward pass also forms
/// each counted row's <c>(one_hot − softmax) · W</c> [M, H] while its logits are at hand, and backward only scales it
/// by the incoming gradient: two matmuls in all, as the naive path, instead of recomputing the logits.
/// </summary>
internal sealed class HiddenGatherFunction : SingleTensorFunction<HiddenGatherFunction>
{
    public override string Name => "TokenLogProbs.FromHidden";

    /// <param name="ctx">Autograd context.</param>
    /// <param name="vars">hidden [N, H], weight [V, H], targets [N] int64, valid [N] bool, chunk size (int), whether to
    /// form the hidden states' gradient direction in the forward pass (bool: a gradient is wanted for the hidden states only).</param>
    /// <returns>[N] log-probabilities in the accumulation dtype, 0 at skipped rows.</returns>
    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var (hidden, weight, targets, valid, chunk) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (Tensor)vars[3], (int)vars[4]);
        bool precompute = (bool)vars[5];
        ScalarType accumulation = TokenLogProbs.AccumulationType(hidden.dtype);

        Tensor rows = valid.nonzero().squeeze(1);        // [M] counted rows only: padding costs nothing
        Tensor rowTargets = targets.index_select(0, rows); // [M]
        long count = rows.shape[0];
        Tensor? direction = precompute ? empty(count, hidden.shape[1], hidden.dtype, hidden.device) : null; // [M, H]
        var (logSumExp, target) = ChunkMath.ScoreChunks(count, chunk, accumulation, hidden.device,
            (start, length) => Project(hidden.index_select(0, rows.narrow(0, start, length)), weight, accumulation), rowTargets, // [C, V] per chunk
            ownsLogits: true,
            direction is null ? null : (start, exponentials, lse, max) =>
            {
                Tensor unit = ones(exponentials.shape[0], accumulation, exponentials.device);
                Tensor logitGradient = ChunkMath.LogitGradientFromExponentials(exponentials, max, lse, rowTargets.narrow(0, start, exponentials.shape[0]), unit);
                direction.narrow(0, start, exponentials.shape[0]).copy_(logitGradient.to_type(weight.dtype).mm(weight));
            });

        ctx.save_for_backward(direction is null ? [hidden, weight, rows, rowTargets, logSumExp] : [hidden, weight, rows, rowTargets, logSumExp, direction]);
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
        if (saved.Count == 6) // formed in the forward pass: only scale it
        {
            Tensor scaled = saved[5].mul(upstream.unsqueeze(1).to_type(saved[5].dtype));
            return [zeros_like(hidden).index_copy_(0, rows, scaled).MoveToOuterDisposeScope(), null!, null!, null!, null!, null!];
        }
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
        return [hiddenGradient?.MoveToOuterDisposeScope()!, weightResult?.MoveToOuterDisposeScope()!, null!, null!, null!, null!];
    }

    /// <summary>Logits [C, V] of hidden states [C, H], in the accumulation dtype; the matmul runs in the weight's dtype.</summary>
    static Tensor Project(Tensor states, Tensor weight, ScalarType accumulation) =>
        states.mm(weight.t()).to_type(accumulation);
}
