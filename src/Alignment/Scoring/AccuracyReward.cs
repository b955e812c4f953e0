namespace Alignment.Scoring;

/// <summary>TRL's <c>accuracy_reward</c> and <c>reasoning_accuracy_reward</c>, on <see cref="FinalAnswer"/>'s rules.</summary>
internal sealed class AccuracyReward : IRewardFunction
{
    readonly string _column;
    readonly IReadOnlyList<string>? _delimiters;

    public AccuracyReward(string name, string column, IReadOnlyList<string>? delimiters)
    {
        Name = RewardFunction.CheckName(name);
        _column = string.IsNullOrEmpty(column) ? throw new ArgumentException("The solution column's name is empty.", nameof(column)) : column;
        if (delimiters is not null && delimiters.Any(string.IsNullOrEmpty))
            throw new ArgumentException("A reasoning delimiter is empty.", nameof(delimiters));
        _delimiters = delimiters;
    }

    public string Name { get; }

    public IReadOnlyList<double?> Score(IReadOnlyList<RewardSample> samples) => samples.Select(Score).ToList();

    double? Score(RewardSample sample)
    {
        if (!sample.Columns.ContainsKey(_column))
            throw new InvalidOperationException($"{Name} compares with the dataset column '{_column}', which the prompt '{Shorten(sample.Prompt)}' does not have" +
                (sample.Columns.Count == 0 ? " (its line has no columns besides the prompt)." : $" (it has {string.Join(", ", sample.Columns.Keys.Select(k => $"'{k}'"))})."));
        string? gold = FinalAnswer.Reference(sample.Column(_column));
        if (gold is null)
            return null;
        string text = sample.Completion;
        if (_delimiters is not null)
        {
            string? delimiter = _delimiters.FirstOrDefault(d => text.Contains(d, StringComparison.Ordinal));
            if (delimiter is null)
                return 0;
            text = text[(text.LastIndexOf(delimiter, StringComparison.Ordinal) + delimiter.Length)..];
        }
        string? answer = FinalAnswer.Extract(text, FinalAnswer.IsNumber(gold));
        return answer is not null && FinalAnswer.Matches(answer, gold) ? 1 : 0;
    }

    static string Shorten(string text) => text.Length <= 60 ? text : text[..57] + "…";
}
