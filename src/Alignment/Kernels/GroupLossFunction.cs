using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Alignment.Kernels;

/// <summary>
/// Autograd function behind <see cref="FusedTokenLoss"/>: per-token log-probabilities from hidden states and the
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
        using var noGrad = no_grad(); // nothing here is differentiated: the gradients are formed by hand
        ScalarType accumulation = perToken.dtype;
        bool wantHidden = hidden.requires_grad, wantWeight = weight.requires_grad;
        Tensor? hiddenGradient = wantHidden ? zeros(hidden.shape, accumulation, hidden.device) : null;  // [N, H]
        Tensor? weightGradient = wantWeight ? zeros(weight.shape, accumulation, weight.device) : null;  // [V, H]

        bool backpropagate = hiddenGradient is not null || weightGradient is not null;
        long vocab = weight.shape[0];
        for (int group = 0; group < plan.Groups.Count; group++)
        {
            using var scope = NewDisposeScope();
            Tensor rows = GroupRows(valid, plan.Groups[group], plan.Time);  // [M] counted rows of the group's sequences
            Tensor rowTargets = targets.index_select(0, rows);
            Upstream known = Normalized(plan.Known?.reshape(-1).to_type(accumulation).index_select(0, rows), weight.dtype, accumulation); // [M]
            var kept = new List<(Tensor Exponentials, Tensor Max)?>(); // per chunk, while they fit the budget
            long keptElements = 0;
            var (logSumExp, target) = ChunkMath.ScoreChunks(rows.shape[0], plan.Chunk, accumulation, hidden.device,
                (start, length) => Project(hidden.index_select(0, rows.narrow(0, start, length)), weight, accumulation), rowTargets,
                ownsLogits: true, (start, exponentials, lse, max) =>
                {
                    if (!backpropagate)
                        return;
                    long length = exponentials.shape[0];
                    if (known.Values is not null) // the gradient is known: back-propagate now, keep nothing
                    {
                        Backpropagate(new Chunk(rows.narrow(0, start, length), rowTargets.narrow(0, start, length), lse, start),
                            exponentials, max, hidden, weight, known, hiddenGradient, weightGradient);
                        return;
                    }
                    bool keep = keptElements + length * vocab <= plan.CacheElements;
                    kept.Add(keep ? (exponentials.MoveToOuterDisposeScope(), max.MoveToOuterDisposeScope()) : null);
                    keptElements += keep ? length * vocab : 0;
                });
            perToken.index_copy_(0, rows, target.sub(logSumExp));
            if (!backpropagate || known.Values is not null)
                continue;

            Upstream upstream = Normalized(plan.GradientOf(group, perToken).reshape(-1).to_type(accumulation).index_select(0, rows), weight.dtype, accumulation);
            for (int c = 0; c < kept.Count; c++)
            {
                using var inner = NewDisposeScope();
                long start = (long)c * plan.Chunk, length = Math.Min(plan.Chunk, rows.shape[0] - start);
                var chunk = new Chunk(rows.narrow(0, start, length), rowTargets.narrow(0, start, length), logSumExp.narrow(0, start, length), start);
                if (kept[c] is var (exponentials, max))
                    Backpropagate(chunk, exponentials, max, hidden, weight, upstream, hiddenGradient, weightGradient);
                else // made again, and exponentiated shifted by the log-sum-exp: the softmax itself
                    Backpropagate(chunk, Project(hidden.index_select(0, chunk.Rows), weight, accumulation).sub_(chunk.LogSumExp.unsqueeze(1)).exp_(),
                        chunk.LogSumExp, hidden, weight, upstream, hiddenGradient, weightGradient);
                kept[c]?.Exponentials.Dispose();
                kept[c] = null;
            }
        }

        ctx.save_for_backward([hiddenGradient ?? empty(0), weightGradient ?? empty(0)]);
        ctx.save_data("hiddenGrad", wantHidden);
        ctx.save_data("weightGrad", wantWeight);
        ctx.save_data("weightType", weight.dtype);
        ctx.save_data("hiddenType", hidden.dtype);
        return zeros([], accumulation, hidden.device);
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
    {
        using var scope = NewDisposeScope();
        List<Tensor> saved = ctx.get_saved_variables();
        bool wantHidden = (bool)ctx.get_data("hiddenGrad"), wantWeight = (bool)ctx.get_data("weightGrad");
        Tensor? hidden = wantHidden ? Scaled(saved[0], gradOutput).to_type((ScalarType)ctx.get_data("hiddenType")) : null;
        Tensor? weight = wantWeight ? Scaled(saved[1], gradOutput).to_type((ScalarType)ctx.get_data("weightType")) : null;
        return [hidden?.MoveToOuterDisposeScope()!, weight?.MoveToOuterDisposeScope()!, null!, null!, null!, null!];
    }

    /// <summary>A chunk of a group's counted rows: their places in the flattened layout, targets, log-sum-exp, and where the chunk starts in the group.</summary>
    readonly record struct Chunk(Tensor Rows, Tensor Targets, Tensor LogSumExp, long Start)
    {
        public long Length => Rows.shape[0];
    }

    /// <summary>
    /// Adds the chunk's share of the gradients: <c>upstream · (one_hot − softmax)</c> formed in the logits' storage, then
    /// times the weight for the hidden states' rows and, transposed, times the hidden states for the weight.
    /// </summary>
    /// <param name="chunk">The chunk's rows.</param>
    /// <param name="exponentials">[C, V] <c>exp(logits − shift)</c> in the accumulation dtype; overwritten.</param>
    /// <param name="shift">[C] what the logits were shifted by.</param>
    /// <param name="hidden">[N, H].</param>
    /// <param name="weight">[V, H].</param>
    /// <param name="upstream">[M] the loss's gradient for the group's rows.</param>
    /// <param name="hiddenGradient">[N, H] the chunk's rows are written, or null.</param>
    /// <param name="weightGradient">[V, H] accumulated into, or null.</param>
    static void Backpropagate(Chunk chunk, Tensor exponentials, Tensor shift, Tensor hidden, Tensor weight, Upstream upstream,
        Tensor? hiddenGradient, Tensor? weightGradient)
    {
        Tensor logitGradient = ChunkMath.LogitGradientFromExponentials(exponentials, shift, chunk.LogSumExp, chunk.Targets,
            upstream.Values.narrow(0, chunk.Start, chunk.Length)).to_type(weight.dtype);
        ScalarType accumulation = exponentials.dtype;
        if (hiddenGradient is not null)
            hiddenGradient.index_copy_(0, chunk.Rows, Unscaled(logitGradient.mm(weight), upstream.Scale, accumulation)); // [C, H]
        if (weightGradient is null)
            return;
        Tensor states = hidden.index_select(0, chunk.Rows);                   // [C, H]
        if (weight.dtype == accumulation)
            weightGradient.addmm_(logitGradient.t(), states);
        else
            weightGradient.add_(Unscaled(logitGradient.t().mm(states), upstream.Scale, accumulation)); // low-precision matmul, float32 sum
    }

    /// <summary>A group's upstream gradient, multiplied by <see cref="Scale"/> for low-precision matmuls.</summary>
    readonly record struct Upstream(Tensor Values, double Scale);

    /// <summary>
    /// For a half-precision weight, the upstream gradient scaled so that its largest entry is 1: the loss's gradient is
    /// formed before any loss scaling, and entries of <c>g · (one_hot − softmax)</c> near g (1e-2 and below) would lose
    /// their low bits, or vanish, in float16. The products are divided by the scale again in float32.
    /// </summary>
    static Upstream Normalized(Tensor? upstream, ScalarType weightType, ScalarType accumulation)
    {
        if (upstream is null)
            return default;
        if (weightType == accumulation || upstream.numel() == 0)
            return new Upstream(upstream, 1);
        double largest = upstream.abs().max().to_type(ScalarType.Float64).item<double>();
        double scale = largest > 0 && double.IsFinite(largest) ? 1 / largest : 1;
        return new Upstream(upstream.mul(scale), scale);
    }

    static Tensor Unscaled(Tensor product, double scale, ScalarType accumulation)
    {
        Tensor wide = product.to_type(accumulation);
        return scale == 1 ? wide : wide.div_(scale);
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
