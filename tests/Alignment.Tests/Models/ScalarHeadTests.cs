using Alignment.Models;
using static TorchSharp.torch;

namespace Alignment.Tests.Models;

public sealed class ScalarHeadTests
{
    [Fact]
    public void The_score_is_read_at_the_last_real_token_for_left_and_right_padding()
    {
        using var scope = NewDisposeScope();
        var head = new ScalarHead(4, generator: new Generator(3)); // seeded: the global generator is shared with tests running alongside
        Tensor hidden = arange(2 * 5 * 4, dtype: ScalarType.Float32).reshape(2, 5, 4).div(10);
        Tensor mask = tensor(new long[,] { { 1, 1, 1, 0, 0 }, { 0, 0, 1, 1, 1 } }); // right-padded, left-padded

        Tensor scores = head.AtLastToken(hidden, mask);

        float[] w = head.Weight.data<float>().ToArray();
        float Dot(int b, int t) => Enumerable.Range(0, 4).Sum(i => w[i] * hidden[b, t, i].item<float>());
        Assert.Equal(Dot(0, 2), scores[0].item<float>(), 5);
        Assert.Equal(Dot(1, 4), scores[1].item<float>(), 5);
        Assert.Equal(new long[] { 2, 5 }, head.PerToken(hidden).shape);
    }
}
