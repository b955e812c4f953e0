namespace Alignment.Data;

/// <summary>Deterministic shuffling and train/eval splits: the same seed gives the same order on every run and machine.</summary>
public static class DataSplit
{
    /// <summary>A Fisher–Yates shuffle driven by <see cref="Random"/> seeded with <paramref name="seed"/> (whose seeded sequence .NET keeps stable).</summary>
    public static List<T> Shuffle<T>(IEnumerable<T> items, int seed)
    {
        ArgumentNullException.ThrowIfNull(items);
        var list = items.ToList();
        var random = new Random(seed);
        for (int i = list.Count - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (list[i], list[j]) = (list[j], list[i]);
        }
        return list;
    }

    /// <summary>Shuffles, then holds out <paramref name="evalFraction"/> of the items (rounded, at least one when the fraction is positive).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The fraction is outside [0, 1).</exception>
    public static (List<T> Train, List<T> Eval) TrainEval<T>(IEnumerable<T> items, double evalFraction, int seed)
    {
        if (!(evalFraction >= 0 && evalFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(evalFraction), evalFraction, "The eval fraction must be in [0, 1).");
        List<T> shuffled = Shuffle(items, seed);
        int count = evalFraction == 0 ? 0 : Math.Max(1, (int)Math.Round(shuffled.Count * evalFraction));
        return Take(shuffled, count);
    }

    /// <summary>Shuffles, then holds out <paramref name="evalCount"/> items.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The count is negative or not smaller than the number of items.</exception>
    public static (List<T> Train, List<T> Eval) TrainEval<T>(IEnumerable<T> items, int evalCount, int seed)
    {
        List<T> shuffled = Shuffle(items, seed);
        if (evalCount < 0 || evalCount >= shuffled.Count && shuffled.Count > 0)
            throw new ArgumentOutOfRangeException(nameof(evalCount), evalCount, $"The eval count must be in [0, {shuffled.Count}).");
        return Take(shuffled, evalCount);
    }

    static (List<T>, List<T>) Take<T>(List<T> shuffled, int evalCount) => (shuffled.Skip(evalCount).ToList(), shuffled.Take(evalCount).ToList());
}
