using System.Reflection;

namespace Alignment.Build.Tests;

/// <summary>Paths the tests read: the pristine native bridge in the package folder, and the repository.</summary>
internal static class Fixture
{
    static string Metadata(string key) =>
        typeof(Fixture).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value!;

    /// <summary>The file exactly as the TorchSharp package ships it, in the NuGet package folder.</summary>
    public static string PristineBridge()
    {
        string path = Path.Combine(Metadata("NuGetPackageRoot"), "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.True(File.Exists(path), $"expected TorchSharp's native bridge at {path}");
        return path;
    }

    /// <summary>The repository's root folder.</summary>
    public static string RepositoryRoot => Metadata("RepositoryRoot");
}
