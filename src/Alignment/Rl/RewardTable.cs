using Alignment.Scoring;

namespace Alignment.Rl;

/// <summary>
/// The rewards of one rollout: each function's (null where it abstained) and TRL's weighted sum over the functions
/// that scored, <c>nansum(w · r)</c>, which is NaN for an unscorable sample (every function abstained).
/// </summary>
internal sealed class RewardTable
{
    RewardTable(IReadOnlyList<string> names, double?[][] perFunction, double[] total) => (Names, PerFunction, Total) = (names, perFunction, total);

    /// <summary>The functions' names, in order.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>[function][sample]</summary>
    public double?[][] PerFunction { get; }

    /// <summary>[sample] the weighted sum; NaN where every function abstained.</summary>
    public double[] Total { get; }

    /// <summary>Calls every function on the samples and sums their rewards with the weights.</summary>
    /// <exception cref="InvalidOperationException">A function returned the wrong number of rewards, or a NaN or infinite one.</exception>
    public static RewardTable Score(IReadOnlyList<IRewardFunction> functions, IReadOnlyList<double> weights, IReadOnlyList<RewardSample> samples)
    {
        var perFunction = new double?[functions.Count][];
        for (int f = 0; f < functions.Count; f++)
        {
            IReadOnlyList<double?> rewards = functions[f].Score(samples);
            if (rewards is null || rewards.Count != samples.Count)
                throw new InvalidOperationException($"The reward function '{functions[f].Name}' returned {rewards?.Count.ToString() ?? "null"} rewards for {samples.Count} completions.");
            int bad = rewards.ToList().FindIndex(r => r is { } value && !double.IsFinite(value));
            if (bad >= 0)
                throw new InvalidOperationException($"The reward function '{functions[f].Name}' returned {rewards[bad]} for completion {bad + 1} of the batch " +
                    $"(prompt '{samples[bad].Prompt}'); return null to abstain.");
            perFunction[f] = [.. rewards];
        }
        var total = new double[samples.Count];
        for (int i = 0; i < samples.Count; i++)
        {
            var scored = Enumerable.Range(0, functions.Count).Where(f => perFunction[f][i] is not null).ToList();
            total[i] = scored.Count == 0 ? double.NaN : scored.Sum(f => weights[f] * perFunction[f][i]!.Value);
        }
        return new RewardTable(functions.Select(f => f.Name).ToList(), perFunction, total);
    }
}
