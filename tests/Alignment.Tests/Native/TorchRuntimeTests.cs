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
}
