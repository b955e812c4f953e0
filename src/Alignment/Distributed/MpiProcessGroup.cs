using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Distributed;

/// <summary>
/// <c>MPI_COMM_WORLD</c> through the C API. CPU tensors are reduced in place on their native memory. CUDA tensors are
/// handed to MPI as device pointers when the library reports CUDA awareness (<c>MPIX_Query_cuda_support</c>), else
/// staged through a pinned host copy; both go through the same call as CPU tensors (unverified here: no GPU).
/// </summary>
internal sealed class MpiProcessGroup : IProcessGroup
{
    const int ThreadSerialized = 2;  // MPI_THREAD_SERIALIZED in both ABIs: the exit handler finalises from another thread
    const int MaxCount = 1 << 30;    // MPI counts are int: larger tensors go in pieces

    readonly MpiLibrary _mpi;
    readonly bool _ownsMpi;
    readonly bool _cudaAware;
    bool _finalized;

    MpiProcessGroup(MpiLibrary mpi, bool ownsMpi)
    {
        _mpi = mpi;
        _ownsMpi = ownsMpi;
        mpi.Check(mpi.CommRank(mpi.CommWorld, out int rank), "MPI_Comm_rank");
        mpi.Check(mpi.CommSize(mpi.CommWorld, out int size), "MPI_Comm_size");
        Rank = rank;
        WorldSize = size;
        LocalRank = Launcher.LocalRank();
        _cudaAware = mpi.CudaSupport?.Invoke() == 1;
    }

    public static MpiProcessGroup Initialize(MpiLibrary mpi)
    {
        mpi.Check(mpi.Initialized(out int running), "MPI_Initialized");
        if (running == 0)
            mpi.Check(mpi.InitThread(0, 0, ThreadSerialized, out _), "MPI_Init_thread");
        return new MpiProcessGroup(mpi, ownsMpi: running == 0);
    }

    public string LibraryPath => _mpi.Path;

    public int Rank { get; }
    public int WorldSize { get; }
    public int LocalRank { get; }

    public string Description => $"MPI ({(_mpi.IsOpenMpi ? "Open MPI" : "MPICH ABI")}, {_mpi.Path}), rank {Rank} of {WorldSize}";

    public void AllReduce(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.dtype is ScalarType.Float16 or ScalarType.BFloat16)
        {
            using Tensor wide = tensor.to_type(ScalarType.Float32);
            AllReduce(wide);
            tensor.copy_(wide);
            return;
        }
        MpiLibrary.DataType type = tensor.dtype switch
        {
            ScalarType.Float32 => MpiLibrary.DataType.Float32,
            ScalarType.Float64 => MpiLibrary.DataType.Float64,
            ScalarType.Int32 => MpiLibrary.DataType.Int32,
            ScalarType.Int64 => MpiLibrary.DataType.Int64,
            _ => throw new ArgumentException($"AllReduce sums float16/32/64, bfloat16 and int32/64 tensors, not {tensor.dtype}.", nameof(tensor)),
        };
        OnBuffer(tensor, writeBack: true, (pointer, count) =>
            Pieces(pointer, count, tensor.ElementSize, (at, n) =>
                _mpi.Check(_mpi.Allreduce(_mpi.InPlace, at, n, _mpi.TypeOf(type), _mpi.OpSum, _mpi.CommWorld), "MPI_Allreduce")));
    }

    public void Broadcast(Tensor tensor, int root = 0)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        ArgumentOutOfRangeException.ThrowIfNegative(root);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(root, WorldSize);
        OnBuffer(tensor, writeBack: Rank != root, (pointer, count) =>
            Pieces(pointer, count * tensor.ElementSize, 1, (at, n) =>
                _mpi.Check(_mpi.Bcast(at, n, _mpi.TypeOf(MpiLibrary.DataType.Byte), root, _mpi.CommWorld), "MPI_Bcast")));
    }

    public Tensor AllGather(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        long bytes = tensor.numel() * tensor.ElementSize;
        if (bytes > int.MaxValue)
            throw new ArgumentException($"AllGather sends at most {int.MaxValue} bytes per rank; this tensor has {bytes}. Gather it in pieces.", nameof(tensor));
        long[] shape = tensor.dim() == 0 ? [WorldSize] : [WorldSize * tensor.shape[0], .. tensor.shape.Skip(1)];
        Tensor result = empty(shape, tensor.dtype, tensor.device);
        nint byteType = _mpi.TypeOf(MpiLibrary.DataType.Byte);
        OnBuffer(tensor, writeBack: false, (send, _) =>
            OnBuffer(result, writeBack: true, (receive, _) =>
                _mpi.Check(_mpi.Allgather(send, (int)bytes, byteType, receive, (int)bytes, byteType, _mpi.CommWorld), "MPI_Allgather")));
        return result;
    }

    public void Barrier() => _mpi.Check(_mpi.Barrier(_mpi.CommWorld), "MPI_Barrier");

    /// <summary>How long <see cref="Abort"/> leaves the launcher to forward this process's last output.</summary>
    static readonly TimeSpan AbortGrace = TimeSpan.FromMilliseconds(500);

    public void Abort(int exitCode)
    {
        // MPI_Abort has the launcher end every process at once: output still in this process's pipes can be lost before
        // the launcher forwards it (seen with MPICH's Hydra in one of five CI runs). Flush it and give the launcher a moment.
        Console.Out.Flush();
        Console.Error.Flush();
        Thread.Sleep(AbortGrace);
        _mpi.Abort(_mpi.CommWorld, exitCode);
        Environment.Exit(exitCode); // MPI_Abort does not return; this is for an MPI that lets it
    }

    /// <summary>MPI_Finalize, once, when this group initialised MPI.</summary>
    public void FinalizeMpi()
    {
        if (!_ownsMpi || _finalized)
            return;
        _finalized = true;
        if (_mpi.Finalized(out int done) == 0 && done == 0)
            _mpi.Finalize();
    }

    /// <summary>
    /// Runs <paramref name="collective"/> on a pointer to <paramref name="tensor"/>'s elements: its own memory when it is
    /// contiguous and on the CPU (or on a GPU with CUDA-aware MPI), else a contiguous (host) copy, written back after
    /// when <paramref name="writeBack"/>.
    /// </summary>
    void OnBuffer(Tensor tensor, bool writeBack, Action<nint, long> collective)
    {
        bool onHost = tensor.device_type == DeviceType.CPU || _cudaAware;
        if (onHost && tensor.is_contiguous())
        {
            collective(DataPointer(tensor), tensor.numel());
            return;
        }
        using Tensor staged = onHost ? tensor.contiguous() : tensor.to(CPU).pin_memory();
        collective(DataPointer(staged), staged.numel());
        if (writeBack)
            tensor.copy_(staged);
    }

    static void Pieces(nint pointer, long count, long elementSize, Action<nint, int> call)
    {
        for (long start = 0; start < count; start += MaxCount)
            call(pointer + (nint)(start * elementSize), (int)Math.Min(MaxCount, count - start));
    }

    static nint DataPointer(Tensor tensor)
    {
        if (tensor.numel() == 0)
            return 0;
        nint pointer = THSTensor_data(tensor.Handle);
        return pointer != 0 ? pointer : throw new InvalidOperationException("TorchSharp returned no data pointer for the tensor.");
    }

    [DllImport("LibTorchSharp")]
    static extern nint THSTensor_data(nint handle);
}
