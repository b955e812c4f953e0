using System.Runtime.InteropServices;
using System.Text;

namespace Alignment.Distributed;

/// <summary>
/// The MPI C library, loaded at run time, and the handles of its two ABIs. Open MPI's predefined handles are
/// addresses of exported objects (<c>ompi_mpi_comm_world</c>, <c>ompi_mpi_float</c>, <c>ompi_mpi_op_sum</c> …) and
/// <c>MPI_IN_PLACE</c> is <c>(void*)1</c>; the MPICH family (MPICH, Intel MPI, MS-MPI) uses integer constants and
/// <c>(void*)-1</c>. The ABI is told by whether <c>ompi_mpi_comm_world</c> is exported. Handles travel as
/// pointer-sized integers either way (an <c>int</c> handle in a 64-bit argument slot reads the same).
/// </summary>
internal sealed class MpiLibrary
{
    /// <summary>The element types collectives carry.</summary>
    public enum DataType { Byte, Int32, Int64, Float32, Float64 }

    readonly nint _library;

    MpiLibrary(nint library, string path)
    {
        _library = library;
        Path = path;
        IsOpenMpi = NativeLibrary.TryGetExport(library, "ompi_mpi_comm_world", out nint world);
        if (IsOpenMpi)
        {
            CommWorld = world;
            InPlace = 1;
            _types = [Export("ompi_mpi_byte"), Export("ompi_mpi_int"), Export("ompi_mpi_long_long_int"), Export("ompi_mpi_float"), Export("ompi_mpi_double")];
            OpSum = Export("ompi_mpi_op_sum");
        }
        else
        {
            CommWorld = 0x44000000;
            InPlace = -1;
            _types = [0x4c00010d, 0x4c000405, 0x4c000809, 0x4c00040a, 0x4c00080b];
            OpSum = 0x58000003;
        }
        Initialized = Function<IntOut>("MPI_Initialized");
        Finalized = Function<IntOut>("MPI_Finalized");
        InitThread = Function<InitThreadFn>("MPI_Init_thread");
        Finalize = Function<NoArgs>("MPI_Finalize");
        CommRank = Function<CommIntOut>("MPI_Comm_rank");
        CommSize = Function<CommIntOut>("MPI_Comm_size");
        Barrier = Function<CommOnly>("MPI_Barrier");
        Abort = Function<AbortFn>("MPI_Abort");
        Allreduce = Function<AllreduceFn>("MPI_Allreduce");
        Bcast = Function<BcastFn>("MPI_Bcast");
        Allgather = Function<AllgatherFn>("MPI_Allgather");
        ErrorString = Function<ErrorStringFn>("MPI_Error_string");
        CudaSupport = NativeLibrary.TryGetExport(library, "MPIX_Query_cuda_support", out nint cuda)
            ? Marshal.GetDelegateForFunctionPointer<NoArgs>(cuda)
            : null;
    }

    readonly nint[] _types;

    /// <summary>The file the library was loaded from.</summary>
    public string Path { get; }

    /// <summary>Open MPI's ABI (else the MPICH family's).</summary>
    public bool IsOpenMpi { get; }

    public nint CommWorld { get; }
    public nint InPlace { get; }
    public nint OpSum { get; }

    public nint TypeOf(DataType type) => _types[(int)type];

    public delegate int NoArgs();
    public delegate int IntOut(out int value);
    public delegate int InitThreadFn(nint argc, nint argv, int required, out int provided);
    public delegate int CommIntOut(nint comm, out int value);
    public delegate int CommOnly(nint comm);
    public delegate int AbortFn(nint comm, int errorCode);
    public delegate int AllreduceFn(nint send, nint receive, int count, nint type, nint op, nint comm);
    public delegate int BcastFn(nint buffer, int count, nint type, int root, nint comm);
    public delegate int AllgatherFn(nint send, int sendCount, nint sendType, nint receive, int receiveCount, nint receiveType, nint comm);
    public delegate int ErrorStringFn(int code, byte[] text, out int length);

    public IntOut Initialized { get; }
    public IntOut Finalized { get; }
    public InitThreadFn InitThread { get; }
    public NoArgs Finalize { get; }
    public CommIntOut CommRank { get; }
    public CommIntOut CommSize { get; }
    public CommOnly Barrier { get; }
    public AbortFn Abort { get; }
    public AllreduceFn Allreduce { get; }
    public BcastFn Bcast { get; }
    public AllgatherFn Allgather { get; }
    public ErrorStringFn ErrorString { get; }

    /// <summary><c>MPIX_Query_cuda_support</c> where the library exports it (Open MPI, MPICH 4), else null.</summary>
    public NoArgs? CudaSupport { get; }

    /// <summary>Throws when an MPI call returned an error code (only reachable with a non-fatal error handler).</summary>
    public void Check(int code, string call)
    {
        if (code == 0)
            return;
        var text = new byte[1024];
        string reason = ErrorString(code, text, out int length) == 0 ? Encoding.UTF8.GetString(text, 0, Math.Clamp(length, 0, text.Length)) : $"error {code}";
        throw new InvalidOperationException($"{call} failed: {reason}");
    }

    /// <summary>
    /// Loads the MPI library: <paramref name="path"/> when given, else the one matching the launcher that started this
    /// process (Open MPI's <c>libmpi.so.40</c> under <c>mpirun.openmpi</c>, MPICH's <c>libmpich.so.12</c> /
    /// <c>libmpi.so.12</c> under Hydra, <c>msmpi.dll</c> on Windows), else the first of those that loads.
    /// </summary>
    /// <exception cref="DllNotFoundException">No MPI library loads; the message lists what was tried and how to install one.</exception>
    public static MpiLibrary Load(string? path)
    {
        var tried = new List<string>();
        foreach (string candidate in path is not null ? [path] : Candidates())
        {
            if (NativeLibrary.TryLoad(candidate, out nint handle))
            {
                if (NativeLibrary.TryGetExport(handle, "MPI_Allreduce", out _))
                    return new MpiLibrary(handle, candidate);
                tried.Add($"{candidate} (loads, but exports no MPI_Allreduce)");
                continue;
            }
            tried.Add(candidate);
        }
        throw new DllNotFoundException($"No MPI library could be loaded (tried {string.Join(", ", tried)}). Install one " +
            "(Debian/Ubuntu: apt-get install openmpi-bin, or mpich; Windows: MS-MPI), or give its path (align: --mpi-library; " +
            "TrainingOptions.MpiLibrary).");
    }

    static IEnumerable<string> Candidates()
    {
        if (OperatingSystem.IsWindows())
            return ["msmpi.dll"];
        string[] openMpi = ["libmpi.so.40", "libmpi.so"], mpich = ["libmpich.so.12", "libmpi.so.12", "libmpich.so"];
        if (OperatingSystem.IsMacOS())
            return ["libmpi.40.dylib", "libmpi.dylib", "libmpich.12.dylib"];
        return Launcher.Detect() == Launcher.Kind.Hydra ? [.. mpich, .. openMpi] : [.. openMpi, .. mpich];
    }

    nint Export(string name) => NativeLibrary.GetExport(_library, name);

    TDelegate Function<TDelegate>(string name) where TDelegate : Delegate =>
        Marshal.GetDelegateForFunctionPointer<TDelegate>(Export(name));
}
