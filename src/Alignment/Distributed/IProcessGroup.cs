using static TorchSharp.torch;

namespace Alignment.Distributed;

/// <summary>
/// The processes (ranks) of one data-parallel job and their collective operations, which every rank calls in the same
/// order. Tensors are reduced in place on their own memory; a rank's tensors must match the other ranks' in shape and
/// dtype. <see cref="ProcessGroup.Single"/> is the one-process group in which every collective is the identity.
/// </summary>
public interface IProcessGroup
{
    /// <summary>This process's index, 0 … <see cref="WorldSize"/> − 1. Rank 0 writes files and logs.</summary>
    int Rank { get; }

    /// <summary>The number of processes.</summary>
    int WorldSize { get; }

    /// <summary>This process's index among the processes on its machine (which GPU it takes).</summary>
    int LocalRank { get; }

    /// <summary>What carries the collectives, e.g. <c>single process</c> or <c>MPI (Open MPI, /usr/lib/…/libmpi.so.40)</c>.</summary>
    string Description { get; }

    /// <summary>Replaces <paramref name="tensor"/> with the element-wise sum of every rank's copy.</summary>
    /// <param name="tensor">Any shape; float32/64, int32/64 reduce as they are, float16/bfloat16 through float32.</param>
    void AllReduce(Tensor tensor);

    /// <summary>Replaces <paramref name="tensor"/> on every rank with <paramref name="root"/>'s copy.</summary>
    /// <param name="tensor">Any shape and dtype, the same on every rank.</param>
    /// <param name="root">The rank whose values are kept.</param>
    void Broadcast(Tensor tensor, int root = 0);

    /// <summary>Every rank's <paramref name="tensor"/>, concatenated along dimension 0 in rank order.</summary>
    /// <param name="tensor">[n, …], the same shape and dtype on every rank.</param>
    /// <returns>A new tensor [<see cref="WorldSize"/> · n, …] on <paramref name="tensor"/>'s device, owned by the caller.</returns>
    Tensor AllGather(Tensor tensor);

    /// <summary>Returns when every rank has called it.</summary>
    void Barrier();

    /// <summary>Ends every rank of the job with <paramref name="exitCode"/> (MPI_Abort); does not return under MPI.</summary>
    void Abort(int exitCode);
}
