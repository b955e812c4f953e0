using static TorchSharp.torch;

namespace Alignment.Distributed;

/// <summary>How a training run finds its process group (<c>TrainingOptions.Distributed</c>).</summary>
public enum DistributedBackend
{
    /// <summary>MPI when the process was started by <c>mpirun</c>/<c>mpiexec</c>/<c>srun</c>, else one process.</summary>
    Auto,

    /// <summary>One process, whatever started it.</summary>
    None,

    /// <summary>MPI, initialised even without a launcher (a world of one).</summary>
    Mpi,
}

/// <summary>The process groups: the one-process group and the process-wide MPI group.</summary>
public static class ProcessGroup
{
    static readonly object Gate = new();
    static MpiProcessGroup? _mpi;

    /// <summary>The group of this process alone: rank 0 of 1, every collective the identity.</summary>
    public static IProcessGroup Single { get; } = new SingleProcessGroup();

    /// <summary>True when <c>mpirun</c> (Open MPI), Hydra's <c>mpiexec</c> (MPICH, Intel MPI) or Slurm's <c>srun</c> started this process.</summary>
    public static bool LaunchedByMpi => Launcher.Detect() != Launcher.Kind.None;

    /// <summary>
    /// The MPI group of every rank of the job (<c>MPI_COMM_WORLD</c>), initialised on first use and finalised when the
    /// process exits; an MPI that the app initialised itself is used as it is and left for the app to finalise.
    /// </summary>
    /// <param name="library">The MPI library's file; null finds Open MPI, MPICH or MS-MPI as the launcher suggests.</param>
    /// <exception cref="DllNotFoundException">No MPI library loads (the message says what was tried).</exception>
    /// <exception cref="InvalidOperationException">MPI is already running from another library file.</exception>
    public static IProcessGroup Mpi(string? library = null)
    {
        lock (Gate)
        {
            if (_mpi is not null)
            {
                if (library is not null && _mpi.LibraryPath != library)
                    throw new InvalidOperationException($"MPI is already initialised from '{_mpi.LibraryPath}'; it cannot be reloaded from '{library}'.");
                return _mpi;
            }
            _mpi = MpiProcessGroup.Initialize(MpiLibrary.Load(library));
            AppDomain.CurrentDomain.ProcessExit += (_, _) => _mpi.FinalizeMpi();
            return _mpi;
        }
    }

    /// <summary>The group <paramref name="backend"/> selects (see <see cref="DistributedBackend"/>).</summary>
    /// <param name="backend">Auto, None or Mpi.</param>
    /// <param name="mpiLibrary">The MPI library's file, or null to find it.</param>
    public static IProcessGroup For(DistributedBackend backend, string? mpiLibrary = null) => backend switch
    {
        DistributedBackend.Mpi => Mpi(mpiLibrary),
        DistributedBackend.Auto when LaunchedByMpi => Mpi(mpiLibrary),
        _ => Single,
    };

    /// <summary>The element-wise sums of <paramref name="values"/> over every rank (in float64).</summary>
    /// <param name="group">The group.</param>
    /// <param name="values">This rank's values; every rank passes as many.</param>
    /// <returns>A new array; <paramref name="values"/> itself when the group has one process.</returns>
    public static double[] AllReduceSum(this IProcessGroup group, params double[] values)
    {
        ArgumentNullException.ThrowIfNull(group);
        ArgumentNullException.ThrowIfNull(values);
        if (group.WorldSize == 1 || values.Length == 0)
            return values;
        using Tensor buffer = tensor(values, ScalarType.Float64);
        group.AllReduce(buffer);
        return buffer.data<double>().ToArray();
    }

    /// <summary>Replaces <paramref name="tensor"/> with the mean of every rank's copy (the sum ÷ world size).</summary>
    /// <param name="group">The group.</param>
    /// <param name="tensor">A floating-point tensor of any shape.</param>
    public static void AllReduceMean(this IProcessGroup group, Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(group);
        ArgumentNullException.ThrowIfNull(tensor);
        if (group.WorldSize == 1)
            return;
        group.AllReduce(tensor);
        tensor.div_(group.WorldSize);
    }
}

/// <summary>One process: rank 0 of 1; every collective leaves its tensor as it is.</summary>
internal sealed class SingleProcessGroup : IProcessGroup
{
    public int Rank => 0;
    public int WorldSize => 1;
    public int LocalRank => 0;
    public string Description => "single process";

    public void AllReduce(Tensor tensor) => ArgumentNullException.ThrowIfNull(tensor);

    public void Broadcast(Tensor tensor, int root = 0)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        ArgumentOutOfRangeException.ThrowIfNotEqual(root, 0);
    }

    public Tensor AllGather(Tensor tensor) => tensor.clone();

    public void Barrier()
    {
    }

    public void Abort(int exitCode) => Environment.Exit(exitCode);
}
