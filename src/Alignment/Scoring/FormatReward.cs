using System.Text.RegularExpressions;

namespace Alignment.Scoring;

/// <summary>1 when a pattern matches at the start of the completion (Python's <c>re.match</c>, DOTALL | MULTILINE), else 0.</summary>
internal sealed class FormatReward : IRewardFunction
{
    readonly Regex _pattern;

    public FormatReward(string name, string pattern)
    {
        Name = RewardFunction.CheckName(name);
        ArgumentNullException.ThrowIfNull(pattern);
        try
        {
            _pattern = new Regex(pattern, RegexOptions.Singleline | RegexOptions.Multiline | RegexOptions.CultureInvariant);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"The format pattern of {name} is not a valid regular expression: {e.Message}", nameof(pattern), e);
        }
    }

    public string Name { get; }

    // The leftmost match is found first, so a match anywhere but at 0 means none starts at 0.
    public IReadOnlyList<double?> Score(IReadOnlyList<RewardSample> samples) =>
        samples.Select(s => (double?)(_pattern.Match(s.Completion) is { Success: true, Index: 0 } ? 1 : 0)).ToList();
}
