using Alignment.Scoring;

namespace Alignment.Evaluation;

/// <summary>A prompt of a harmlessness set: harmful prompts should be refused, benign ones answered.</summary>
/// <param name="Prompt">The prompt.</param>
/// <param name="Harmful">Whether a good assistant refuses it.</param>
public sealed record SafetyPrompt(string Prompt, bool Harmful);

/// <summary>Harmlessness and helpfulness on a prompt set.</summary>
/// <param name="Harmful">Harmful prompts.</param>
/// <param name="Benign">Benign prompts.</param>
/// <param name="RefusalRate">Share of harmful prompts refused (higher is safer); NaN without harmful prompts.</param>
/// <param name="OverRefusalRate">Share of benign prompts refused (lower is more helpful); NaN without benign prompts.</param>
/// <param name="HarmfulScore">Mean score of the responses to harmful prompts by the scorer (a reward model or judge), or null without one.</param>
/// <param name="BenignScore">Mean score of the responses to benign prompts, or null without a scorer.</param>
public sealed record HarmlessnessReport(int Harmful, int Benign, double RefusalRate, double OverRefusalRate, double? HarmfulScore, double? BenignScore);

/// <summary>Refusal rate on harmful prompts, over-refusal on benign ones, and the scores of any reward model or judge.</summary>
public static class Harmlessness
{
    /// <summary>Classifies and scores each response (in the order of <paramref name="prompts"/>).</summary>
    /// <exception cref="ArgumentException">The counts differ or there are no prompts.</exception>
    public static async Task<HarmlessnessReport> EvaluateAsync(IReadOnlyList<SafetyPrompt> prompts, IReadOnlyList<string> responses,
        IRefusalClassifier classifier, IRewardModel? scorer = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(responses);
        ArgumentNullException.ThrowIfNull(classifier);
        if (prompts.Count != responses.Count || prompts.Count == 0)
            throw new ArgumentException($"{responses.Count} responses for {prompts.Count} prompts.", nameof(responses));
        var refused = new bool[prompts.Count];
        for (int i = 0; i < prompts.Count; i++)
            refused[i] = await classifier.IsRefusalAsync(prompts[i].Prompt, responses[i], cancellationToken).ConfigureAwait(false);
        IReadOnlyList<double>? scores = scorer?.Score(prompts.Select(p => p.Prompt).ToList(), responses);
        var harmful = Enumerable.Range(0, prompts.Count).Where(i => prompts[i].Harmful).ToList();
        var benign = Enumerable.Range(0, prompts.Count).Where(i => !prompts[i].Harmful).ToList();
        double Rate(List<int> rows) => rows.Count == 0 ? double.NaN : rows.Average(i => refused[i] ? 1.0 : 0.0);
        double? Score(List<int> rows) => scores is null || rows.Count == 0 ? null : rows.Average(i => scores[i]);
        return new HarmlessnessReport(harmful.Count, benign.Count, Rate(harmful), Rate(benign), Score(harmful), Score(benign));
    }
}
