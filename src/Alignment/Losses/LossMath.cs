using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Alignment.Losses;

/// <summary>Numerically stable pieces shared by the loss families.</summary>
internal static class LossMath
{
    /// <summary>Largest exponent fed to exp by the f-divergence scores: keeps exp(x) finite in float32.</summary>
    public const double ExpCap = 80.0;

    public static Tensor LogSigmoid(Tensor x) => F.logsigmoid(x);

    /// <summary><c>exp(min(x, cap))</c>: finite for any finite x.</summary>
    public static Tensor CappedExp(Tensor x) => x.clamp_max(ExpCap).exp();

    /// <summary><c>log(1 − exp(x))</c> for x &lt; 0, stable near 0 and for very negative x (Mächler 2012).</summary>
    public static Tensor Log1mExp(Tensor x)
    {
        // Each branch sees only inputs from its own domain: where() back-propagates 0 into the unused branch, and
        // 0 times an infinite local derivative (expm1 of a huge value) would be NaN.
        double ln2 = Math.Log(2);
        Tensor nearZero = x.clamp_min(-ln2).neg().expm1().log();   // log(−expm1(x)), accurate for x in (−ln 2, 0)
        Tensor farFromZero = x.clamp_max(-ln2).exp().neg().log1p(); // log1p(−e^x), accurate for x ≤ −ln 2
        return nearZero.where(x.gt(-ln2), farFromZero);
    }

    /// <summary>The metrics every preference loss reports, with TRL's names, as detached scalars.</summary>
    public static Dictionary<string, Tensor> RewardMetrics(Tensor chosenRewards, Tensor rejectedRewards, Tensor chosenLogps, Tensor rejectedLogps)
    {
        Tensor chosen = chosenRewards.detach();
        Tensor rejected = rejectedRewards.detach();
        return new Dictionary<string, Tensor>
        {
            ["rewards/chosen"] = chosen.mean(),
            ["rewards/rejected"] = rejected.mean(),
            ["rewards/accuracies"] = chosen.gt(rejected).to_type(chosen.dtype).mean(),
            ["rewards/margins"] = chosen.sub(rejected).mean(),
            ["logps/chosen"] = chosenLogps.detach().mean(),
            ["logps/rejected"] = rejectedLogps.detach().mean(),
        };
    }

    /// <summary>Moves the loss and every metric out of the current dispose scope.</summary>
    public static PreferenceLossOutput Keep(Tensor loss, Dictionary<string, Tensor> metrics)
    {
        foreach (Tensor metric in metrics.Values)
            metric.MoveToOuterDisposeScope();
        return new PreferenceLossOutput(loss.MoveToOuterDisposeScope(), metrics);
    }

    /// <summary>Token-level mean NLL of the chosen completions over the whole batch: −Σ log π(y_c) / Σ |y_c|.</summary>
    public static Tensor ChosenNll(CompletionLogProbs chosen) =>
        chosen.Sums.sum().neg().div(chosen.TokenCounts.to_type(chosen.Sums.dtype).sum().clamp_min(1));
}
