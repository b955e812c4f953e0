namespace Alignment.Scoring;

/// <summary>DAPO's soft over-length punishment (TRL's <c>get_soft_overlong_punishment</c>) over the completion's token count.</summary>
internal sealed class SoftOverlongPunishment : IRewardFunction
{
    readonly int _max;
    readonly int _cache;

    public SoftOverlongPunishment(int maxCompletionLength, int softPunishCache)
    {
        _max = maxCompletionLength >= 1 ? maxCompletionLength
            : throw new ArgumentOutOfRangeException(nameof(maxCompletionLength), maxCompletionLength, "max_completion_len must be >= 1.");
        _cache = softPunishCache >= 0 && softPunishCache <= maxCompletionLength ? softPunishCache
            : throw new ArgumentOutOfRangeException(nameof(softPunishCache), softPunishCache, $"soft_punish_cache must be in [0, max_completion_len = {maxCompletionLength}].");
    }

    public string Name => "soft_overlong_punishment_reward";

    public IReadOnlyList<double?> Score(IReadOnlyList<RewardSample> samples) => samples.Select(s => (double?)Punishment(s.CompletionIds.Count)).ToList();

    double Punishment(int length) =>
        length <= _max - _cache ? 0
        : length <= _max ? (double)(_max - _cache - length) / _cache
        : -1;
}
