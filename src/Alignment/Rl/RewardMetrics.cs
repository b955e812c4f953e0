using Alignment.Distributed;
using Alignment.Models;

namespace Alignment.Rl;

/// <summary>TRL's reward metrics of a GRPO/RLOO/PPO step, summed over every process before they are divided.</summary>
internal static class RewardMetrics
{
    /// <summary>
    /// TRL's per-function metrics over every process: <c>rewards/&lt;name&gt;/mean</c> and <c>/std</c> over the samples the
    /// function scored (left out when it scored none, or the deviation when it scored one).
    /// </summary>
    public static void AddRewardMetrics(RewardTable rewards, IProcessGroup processes, Dictionary<string, double> metrics)
    {
        double[] totals = processes.AllReduceSum([.. rewards.PerFunction.SelectMany(Moments)]);
        for (int f = 0; f < rewards.Names.Count; f++)
        {
            var (sum, squares, n) = (totals[3 * f], totals[3 * f + 1], totals[3 * f + 2]);
            if (n > 0)
                metrics[$"rewards/{rewards.Names[f]}/mean"] = sum / n;
            if (n > 1)
                metrics[$"rewards/{rewards.Names[f]}/std"] = UnbiasedStd(sum, squares, n);
        }
    }

    /// <summary>Σx, Σx², n over the values that are there.</summary>
    static double[] Moments(IEnumerable<double?> values)
    {
        var present = values.Where(v => v is { } x && double.IsFinite(x)).Select(v => v!.Value).ToList();
        return [present.Sum(), present.Sum(x => x * x), present.Count];
    }

    static double UnbiasedStd(double sum, double squares, double n) => Math.Sqrt(Math.Max(0, (squares - sum * sum / n) / (n - 1)));

    /// <summary>
    /// TRL's GRPO metrics over every process: <c>reward</c> and <c>reward_std</c> (the scored samples' mean and unbiased
    /// deviation), <c>frac_reward_zero_std</c> (groups whose scored rewards are all equal), <c>completions/mean_length</c>,
    /// <c>completions/clipped_ratio</c>.
    /// </summary>
    public static void AddGroupMetrics(Rollout rollout, int group, IProcessGroup processes, Dictionary<string, double> metrics)
    {
        var groups = rollout.Scores.Chunk(group).Select(group => group.Where(double.IsFinite).ToArray()).ToList();
        int zeroStd = groups.Count(g => g.Length > 1 && g.All(x => x == g[0]));
        double[] moments = Moments(rollout.Scores.Select(x => (double?)x));
        double[] totals = processes.AllReduceSum(moments[0], moments[1], moments[2], zeroStd, groups.Count,
            rollout.Completions.Sum(c => (double)c.Tokens.Length), rollout.Completions.Count, rollout.Completions.Count(c => c.Reason != FinishReason.EndOfSequence));
        if (totals[2] > 0)
            metrics["reward"] = totals[0] / totals[2];
        if (totals[2] > 1)
            metrics["reward_std"] = UnbiasedStd(totals[0], totals[1], totals[2]);
        metrics["frac_reward_zero_std"] = totals[3] / totals[4];
        metrics["completions/mean_length"] = totals[5] / totals[6];
        metrics["completions/clipped_ratio"] = totals[7] / totals[6];
    }
}
