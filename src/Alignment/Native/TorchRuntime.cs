using System.Runtime.InteropServices;
using Alignment.Build;
using TorchSharp;

namespace Alignment.Native;

/// <summary>
/// Loads TorchSharp's native libraries and, when that fails, says which file failed and why.
/// </summary>
/// <remarks>
/// TorchSharp reports a failed native load as a bare <see cref="TypeInitializationException"/>. Call
/// <see cref="EnsureLoaded"/> before the first tensor operation to get the loader's own message instead. On Linux it
/// also asks LibTorch to advise transparent huge pages for CPU tensors of 2 MiB and more (<c>THP_MEM_ALLOC_ENABLE=1</c>,
/// unless the environment sets it already: <c>THP_MEM_ALLOC_ENABLE=0</c> keeps LibTorch's default), which only takes
/// effect when it runs before the first tensor is made — every model constructor and the <c>align</c> tool call it.
/// </remarks>
public static class TorchRuntime
{
    const string BridgeLibrary = "libLibTorchSharp.so";
    static readonly Lazy<Exception?> LoadFailure = new(TryLoad, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Initialises TorchSharp's CPU backend once per process.</summary>
    /// <exception cref="DllNotFoundException">
    /// A native library could not be loaded; the message names the file and gives the dynamic loader's error.
    /// </exception>
    public static void EnsureLoaded()
    {
        if (LoadFailure.Value is { } failure)
            throw failure;
    }

    /// <summary>
    /// Threads of TorchSharp's CPU operations in this process: TorchSharp's default is the number of physical cores it
    /// sees, the fastest choice on an idle machine; on a loaded one fewer are faster (generation measured 3× faster with
    /// one thread of two while another process ran).
    /// </summary>
    public static int Threads
    {
        get
        {
            EnsureLoaded();
            return torch.get_num_threads();
        }
    }

    /// <summary>Sets <see cref="Threads"/> for the whole process (transformers users know this as <c>torch.set_num_threads</c>).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="threads"/> is not in [1, 1024].</exception>
    public static void SetThreads(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(threads, 1024);
        EnsureLoaded();
        if (torch.get_num_threads() != threads)
            torch.set_num_threads(threads);
    }

    static Exception? TryLoad()
    {
        try
        {
            WeakenUnneededVersionNeeds(BridgeCandidates(AppContext.BaseDirectory));
            NativeHeap.AdviseHugePages(); // before LibTorch's first allocation, which reads it
            torch.InitializeDeviceType(DeviceType.CPU);
            return null;
        }
        catch (Exception e) when (e is TypeInitializationException or NotSupportedException or DllNotFoundException)
        {
            return new DllNotFoundException(DescribeLoadFailure(BridgeCandidates(AppContext.BaseDirectory)), e);
        }
    }

    /// <summary>The copies of TorchSharp's native bridge an app may load, below its base folder.</summary>
    internal static IEnumerable<string> BridgeCandidates(string baseDirectory)
    {
        if (!OperatingSystem.IsLinux() || !Directory.Exists(baseDirectory))
            return [];
        return Directory.EnumerateFiles(baseDirectory, BridgeLibrary, SearchOption.AllDirectories).Order(StringComparer.Ordinal);
    }

    /// <summary>
    /// Applies the package's build-time fix to the app's own copies of the native bridge before the first load: the
    /// libstdc++ version needs that this system lacks and that only unused symbols ask for are marked weak (through a
    /// temporary copy and a rename; a package-cache hard link is never modified). A build through the package already
    /// did this; an app that references the library as a project relies on it. A folder that cannot be written is left
    /// as it is (the load failure then explains).
    /// </summary>
    /// <returns>The files changed.</returns>
    internal static IReadOnlyList<string> WeakenUnneededVersionNeeds(IEnumerable<string> candidates)
    {
        var changed = new List<string>();
        if (!OperatingSystem.IsLinux() || ElfVersionNeeds.FindSystemLibStdCxx() is not { } libStdCxx)
            return changed;
        HashSet<string> available = ElfVersionNeeds.DefinedVersions(libStdCxx);
        foreach (string file in candidates)
        {
            try
            {
                if (ElfVersionNeeds.WeakenMissingHarmless(file, available).Weakened.Count > 0)
                    changed.Add(file);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
            {
                // read-only or unreadable: the load reports what is wrong with this file
            }
        }
        return changed;
    }

    /// <summary>
    /// Loads each candidate file directly and reports the loader's error for each that fails.
    /// </summary>
    internal static string DescribeLoadFailure(IEnumerable<string> candidates)
    {
        var lines = new List<string>();
        foreach (string path in candidates)
        {
            try
            {
                NativeLibrary.Free(NativeLibrary.Load(path));
            }
            catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
            {
                lines.Add($"'{path}' failed to load: {e.Message}");
            }
        }

        string detail = lines.Count > 0
            ? string.Join(Environment.NewLine, lines)
            : "no copy of " + BridgeLibrary + " failed to load on its own; the failure is in a library it depends on (libtorch) " +
              "or no TorchSharp backend package (TorchSharp-cpu, TorchSharp-cuda-*) is referenced by the app.";
        string hint = detail.Contains("GLIBCXX_", StringComparison.Ordinal)
            ? Environment.NewLine + "The system's libstdc++ is older than the one TorchSharp was built with. The Alignment package " +
              "patches the copy in the build output (its buildTransitive target), and TorchRuntime.EnsureLoaded patches the app's own " +
              "copy before the first load when its folder is writable; check that the app runs from its build or publish folder, that " +
              "AlignmentPatchNativeLibraries is not false, and that EnsureLoaded runs before the first tensor operation."
            : "";
        return "TorchSharp's native libraries could not be loaded." + Environment.NewLine + detail + hint;
    }
}
