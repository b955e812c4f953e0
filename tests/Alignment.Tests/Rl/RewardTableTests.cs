using Alignment.Rl;
using Alignment.Scoring;

namespace Alignment.Tests.Rl;

public sealed class RewardTableTests
{
    static readonly RewardSample[] Samples = [.. Enumerable.Range(0, 3).Select(i => new RewardSample($"p{i}", $"c{i}", [], new Dictionary<string, System.Text.Json.Nodes.JsonNode?>()))];

    static IRewardFunction Fixed(string name, params double?[] values) => RewardFunction.From(name, sample => values[int.Parse(sample.Prompt[1..])]);

    [Fact]
    public void The_reward_is_the_weighted_sum_of_the_functions_that_did_not_abstain()
    {
        var table = RewardTable.Score([Fixed("a", 1, null, null), Fixed("b", 2, 4, null)], [0.5, 3], Samples);
        // sample 0: 0.5·1 + 3·2 = 6.5; sample 1: only b, 3·4 = 12; sample 2: every function abstained → NaN (TRL's unscorable)
        Assert.Equal(6.5, table.Total[0]);
        Assert.Equal(12, table.Total[1]);
        Assert.True(double.IsNaN(table.Total[2]));
        Assert.Equal(["a", "b"], table.Names);
        Assert.Equal([1.0, null, null], table.PerFunction[0]);
    }

    [Fact]
    public void A_function_that_returns_nan_or_the_wrong_count_is_named()
    {
        var nan = Assert.Throws<InvalidOperationException>(() => RewardTable.Score([Fixed("broken", 1, double.NaN, 0)], [1], Samples));
        Assert.Contains("'broken'", nan.Message);
        Assert.Contains("null to abstain", nan.Message);
        var count = Assert.Throws<InvalidOperationException>(() => RewardTable.Score([new Short()], [1], Samples));
        Assert.Contains("returned 1 rewards for 3", count.Message);
    }

    sealed class Short : IRewardFunction
    {
        public string Name => "short";
        public IReadOnlyList<double?> Score(IReadOnlyList<RewardSample> samples) => [1.0];
    }
}
