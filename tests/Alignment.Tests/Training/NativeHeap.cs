using System.Runtime.InteropServices;

namespace Alignment.Tests.Training;

/// <summary>glibc's view of the native heap, where LibTorch's CPU tensors live.</summary>
internal static class NativeHeap
{
    [StructLayout(LayoutKind.Sequential)]
    struct MallInfo2
    {
        public nuint Arena, Ordblks, Smblks, Hblks, Hblkhd, Usmblks, Fsmblks, Uordblks, Fordblks, Keepcost;
    }

    [DllImport("libc", EntryPoint = "mallinfo2")]
    static extern MallInfo2 MallocInfo();

    /// <summary>Bytes in use: small blocks from the arenas plus large ones mapped on their own.</summary>
    public static long InUse()
    {
        MallInfo2 info = MallocInfo();
        return (long)(info.Uordblks + info.Hblkhd);
    }

    /// <summary>Hands freed pages back to the system, so that resident memory shows what is in use.</summary>
    public static void Trim() => Alignment.Native.NativeHeap.ReleaseFreed();
}
