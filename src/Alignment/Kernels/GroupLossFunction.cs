using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Alignment.Kernels;

/// <summary>
/// Autograd function behind <see cref="FusedTokenLoss.Run"/>: per-token log-probabilities from hidden states and the
/// lm_head weight, with the gradients of a loss formed in the forward pass while each group's logits are at hand.
/// For each group of sequences (a chosen/rejected pair): its logits chunk by chunk (kept while they fit the cache
/// budget), its per-token log-probabilities, the loss's gradient for them (the caller's delegate), then
/// <c>g · (one_hot − softmax)</c> and from it the hidden states' and the weight's gradients — three matmuls, as the
/// naive path, instead of recomputing the logits in backward. Its output is a zero scalar whose backward scales the
/// saved gradients by the incoming one; the caller adds it to the loss's value.
/// </summary>
internal sealed class GroupLossFunction : SingleTensorFunction<GroupLossFunction>
{
    public override string Name => "FusedTokenLoss";

    /// <param name="ctx">Autograd context.</param>
    /// <param name="vars">hidden [N, H], weight [V, H], targets [N] int64, valid [N] bool, <see cref="FusedTokenLoss.Plan"/>,
    /// the per-token result [N] to fill (accumulation dtype).</param>
    /// <returns>A zero scalar in the accumulation dtype.</returns>
    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var (hidden, weight, targets, valid) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (Tensor)vars[3]);
        var plan = (FusedTokenLoss.Plan)vars[4];
        var perToken = (Tensor)vars[5];
        ScalarType accumulation = perToken.dtype;
        bool wantHidden = hidden.requires_grad, wantWeight = weight.requires_grad;
        Tensor? hiddenGradient = wantHidden ? zeros_like(hidden) : null;                                // [N, H]
        Tensor? weightGradient = wantWeight ? zeros(weight.shape, accumulation, weight.device) : null;  // [V, H]

        for (int group = 0; group < plan.Groups.Count; group++)
        {
            using var scope = NewDisposeScope();
            Tensor rows = GroupRows(valid, plan.Groups[group], plan.Time);  // [M] counted rows of the group's sequences
            Tensor rowTargets = targets.index_select(0, rows);
            long count = rows.shape[0];
            var cached = new List<Tensor?>();
            long cachedElements = 0, vocab = weight.shape[0];
            Tensor logSumExp = empty(count, accumulation, hidden.device);
            for (long start = 0; start < count; start += plan.Chunk)
            {
                using var inner = NewDisposeScope();
                long length = Math.Min(plan.Chunk, count - start);
                Tensor chunkRows = rows.narrow(0, start, length);
                Tensor logits = Project(hidden.index_select(0, chunkRows), weight, accumulation); // [C, V]
                var (lse, target) = ChunkMath.Score(logits, rowTargets.narrow(0, start, length));
                logSumExp.narrow(0, start, length).copy_(lse);
                perToken.index_copy_(0, chunkRows, target.sub(lse));
                bool keep = cachedElements + length * vocab <= plan.CacheElements;
                cached.Add(keep ? logits.MoveToOuterDisposeScope() : null);
                cachedElements += keep ? length * vocab : 0;
            }
            if (hiddenGradient is null && weightGradient is null)
                continue;

            Tensor upstream = plan.GradientOf(group, perToken).reshape(-1).to_type(accumulation).index_select(0, rows); // [M]
            for (int c = 0; c < cached.Count; c++)
            {
                using var inner = NewDisposeScope();
                long start = (long)c * plan.Chunk, length = Math.Min(plan.Chunk, count - start);
                Tensor chunkRows = rows.narrow(0, start, length);
                Tensor states = hidden.index_select(0, chunkRows);                          // [C, H]
                Tensor logits = cached[c] ?? Project(states, weight, accumulation);          // [C, V]
                Tensor logitGradient = ChunkMath.LogitGradient(logits, logSumExp.narrow(0, start, length),
                    rowTargets.narrow(0, start, length), upstream.narrow(0, start, length), overwrite: true).to_type(weight.dtype);
                hiddenGradient?.index_copy_(0, chunkRows, logitGradient.mm(weight));        // [C, H]
                if (weightGradient is not null)
                {
                    if (weight.dtype == accumulation)
                        weightGradient.addmm_(logitGradient.t(), states);
                    else
                        weightGradient.add_(logitGradient.t().mm(states).to_type(accumulation)); // low-precision matmul, float32 sum
                }
                cached[c]?.Dispose();
                cached[c] = null;
            }
        }

        ctx.save_for_backward([hiddenGradient ?? empty(0), weightGradient ?? empty(0)]);
        ctx.save_data("hiddenGrad", wantHidden);
        ctx.save_data("weightGrad", wantWeight);
        ctx.save_data("weightType", weight.dtype);
        return zeros([], accumulation, hidden.device);
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
    {
        using var scope = NewDisposeScope();
        List<Tensor> saved = ctx.get_saved_variables();
        bool wantHidden = (bool)ctx.get_data("hiddenGrad"), wantWeight = (bool)ctx.get_data("weightGrad");
        Tensor? hidden = wantHidden ? Scaled(saved[0], gradOutput) : null;
        Tensor? weight = wantWeight ? Scaled(saved[1], gradOutput).to_type((ScalarType)ctx.get_data("weightType")) : null;
        return [hidden?.MoveToOuterDisposeScope()!, weight?.MoveToOuterDisposeScope()!, null!, null!, null!, null!];
    }

    /// <summary>The saved gradient times the incoming scalar, in place: the graph is used once, and a copy would double the weight's gradient memory.</summary>
    static Tensor Scaled(Tensor gradient, Tensor scale) => gradient.mul_(scale.to_type(gradient.dtype));

    /// <summary>The counted rows of <paramref name="sequences"/> in the flattened [N] layout, sequence by sequence.</summary>
    static Tensor GroupRows(Tensor valid, IReadOnlyList<int> sequences, long time) =>
        cat(sequences.Select(s => valid.narrow(0, s * time, time).nonzero().squeeze(1).add(s * time)).ToArray());

    /// <summary>Logits [C, V] of hidden states [C, H], in the accumulation dtype; the matmul runs in the weight's dtype.</summary>
    static Tensor Project(Tensor states, Tensor weight, ScalarType accumulation) =>
        states.mm(weight.t()).to_type(accumulation);
}
