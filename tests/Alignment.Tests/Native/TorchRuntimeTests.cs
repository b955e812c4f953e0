using Alignment.Native;
using TorchSharp;

namespace Alignment.Tests.Native;

public sealed class TorchRuntimeTests
{
    [Fact]
    public void Randn_works_in_the_test_process()
    {
        TorchRuntime.EnsureLoaded();
        using var t = torch.randn(2, 2);
        Assert.Equal(new long[] { 2, 2 }, t.shape);
    }

    [Fact]
    public void A_file_that_fails_to_load_is_named_with_the_loader_error()
    {
        string folder = Directory.CreateTempSubdirectory("alignment-load-").FullName;
        try
        {
            string broken = Path.Combine(folder, "libLibTorchSharp.so");
            File.WriteAllText(broken, string.Concat(Enumerable.Repeat("this is not an ELF file. ", 20)));

            string message = TorchRuntime.DescribeLoadFailure(TorchRuntime.BridgeCandidates(folder));

            Assert.Contains(broken, message);
            Assert.Contains("failed to load", message);
            Assert.Contains("invalid ELF header", message);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void With_no_failing_file_the_message_points_at_dependencies_and_backends()
    {
        string message = TorchRuntime.DescribeLoadFailure([]);
        Assert.Contains("TorchSharp-cpu", message);
    }
}
