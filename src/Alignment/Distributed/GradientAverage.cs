using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Alignment.Distributed;

/// <summary>
/// Combines the ranks' gradients before clipping: every rank's gradients, scaled by its own factor, are summed across
/// ranks in flat buckets of at most a set size, so that many small tensors (LoRA's) share one MPI call.
/// </summary>
internal static class GradientAverage
{
    static long _timestamps;

    /// <summary>Wall time this process has spent combining gradients across processes (for the scale-out benchmark).</summary>
    public static TimeSpan TimeAcrossProcesses => System.Diagnostics.Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _timestamps));

    /// <summary>
    /// Replaces each parameter's gradient <c>g_r</c> on every rank with <c>Σ_r factor_r · g_r</c>; a parameter without a
    /// gradient on this rank counts as zeros. With one process this is <c>g · factor</c>.
    /// </summary>
    /// <param name="group">The ranks.</param>
    /// <param name="parameters">The trainable parameters, in the same order on every rank.</param>
    /// <param name="factor">This rank's weight (e.g. its share of the global batch's items).</param>
    /// <param name="bucketBytes">The most bytes one flat bucket holds (a single larger gradient gets a bucket of its own).</param>
    public static void Reduce(IProcessGroup group, IReadOnlyList<Parameter> parameters, double factor, long bucketBytes)
    {
        using var scope = NewDisposeScope();
        using var weight = factor.ToScalar();
        if (group.WorldSize == 1)
        {
            if (factor != 1)
                foreach (Parameter parameter in parameters)
                    parameter.grad?.mul_(weight);
            return;
        }
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        var bucket = new List<Tensor>();
        long bytes = 0;
        ScalarType? kind = null;
        foreach (Parameter parameter in parameters)
        {
            Tensor? gradient = parameter.grad;
            if (gradient is null)
            {
                parameter.grad = zeros_like(parameter);
                gradient = parameter.grad!;
            }
            ScalarType wide = gradient.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32; // what MPI sums
            long size = gradient.numel() * wide.ElementSize();
            if (bucket.Count > 0 && (bytes + size > bucketBytes || kind != wide))
            {
                Flush(group, bucket, kind!.Value, factor == 1 ? null : weight);
                bucket.Clear();
                bytes = 0;
            }
            bucket.Add(gradient);
            bytes += size;
            kind = wide;
        }
        if (bucket.Count > 0)
            Flush(group, bucket, kind!.Value, factor == 1 ? null : weight);
        Interlocked.Add(ref _timestamps, System.Diagnostics.Stopwatch.GetTimestamp() - start);
    }

    /// <summary>One bucket: flatten in <paramref name="wide"/> (float32, or float64 for float64 gradients), scale (unless by 1), sum across ranks, copy back.</summary>
    static void Flush(IProcessGroup group, List<Tensor> gradients, ScalarType wide, Scalar? weight)
    {
        using var scope = NewDisposeScope();
        bool inPlace = gradients.Count == 1 && gradients[0].dtype == wide && gradients[0].is_contiguous();
        Tensor flat = inPlace ? gradients[0].view(-1) : cat(gradients.Select(g => g.reshape(-1).to_type(wide)).ToList(), 0);
        if (weight is not null)
            flat.mul_(weight);
        group.AllReduce(flat);
        if (inPlace)
            return; // the view shares the gradient's memory
        long offset = 0;
        foreach (Tensor gradient in gradients)
        {
            long n = gradient.numel();
            gradient.copy_(flat.narrow(0, offset, n).view(gradient.shape));
            offset += n;
        }
    }
}
