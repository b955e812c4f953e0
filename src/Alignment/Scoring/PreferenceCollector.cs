using System.Text.Json;
using System.Text.Json.Nodes;
using Alignment.Data;

namespace Alignment.Scoring;

/// <summary>How the collector pairs a prompt's completions.</summary>
public enum PairingStrategy
{
    /// <summary>Shuffle, then pair neighbours: ⌊n/2⌋ pairs, each completion used once.</summary>
    Random,

    /// <summary>Every unordered pair: n(n−1)/2 pairs.</summary>
    AllPairs,

    /// <summary>The completion with the best quality score against each of the others ("hard negatives").</summary>
    BestVsRest,
}

/// <summary>Settings of <see cref="PreferenceCollector"/>.</summary>
public sealed record CollectionOptions
{
    /// <summary>Completions sampled from each generator per prompt.</summary>
    public int CompletionsPerGenerator { get; init; } = 2;

    /// <summary>How completions are paired.</summary>
    public PairingStrategy Pairing { get; init; } = PairingStrategy.AllPairs;

    /// <summary>Quality score for <see cref="PairingStrategy.BestVsRest"/> (prompt, completion → score).</summary>
    public Func<string, string, double>? QualityScore { get; init; }

    /// <summary>Seed of the random pairing.</summary>
    public int Seed { get; init; }

    /// <summary>A pair is flagged when the share of judges against the majority exceeds this.</summary>
    public double DisagreementThreshold { get; init; } = 0.25;

    /// <summary>Leave flagged pairs out of the output (they are still counted).</summary>
    public bool ExcludeFlagged { get; init; }
}

/// <summary>One collected pair.</summary>
public sealed record CollectedPair(string Prompt, string Chosen, string Rejected, double Agreement, bool Flagged, IReadOnlyDictionary<string, Preference> Votes);

/// <summary>What a collection run produced.</summary>
public sealed record CollectionReport(int Prompts, int Completions, int PairsJudged, int PairsWritten, int Ties, int Flagged);

/// <summary>
/// Builds preference data: for each prompt, samples completions from one or more generators, pairs them, has every
/// judge vote, resolves the pair by majority (ties abstain), flags disagreement, and writes pairwise JSONL
/// (<c>{"prompt", "chosen", "rejected", "agreement", "flagged", "votes"}</c>, readable by <see cref="PreferenceData.ReadPairs"/>).
/// </summary>
public sealed class PreferenceCollector(IReadOnlyList<ICompletionGenerator> generators, IReadOnlyList<IPreferenceJudge> judges, CollectionOptions? options = null)
{
    readonly CollectionOptions _options = options ?? new CollectionOptions();

    /// <summary>The majority of the non-tie votes, and its share of them; a tie when no side has more.</summary>
    public static (Preference Majority, double Agreement) Resolve(IEnumerable<Preference> votes)
    {
        int first = 0, second = 0;
        foreach (Preference vote in votes)
        {
            if (vote == Preference.First) first++;
            else if (vote == Preference.Second) second++;
        }
        if (first == second)
            return (Preference.Tie, first == 0 ? 0 : 0.5);
        return (first > second ? Preference.First : Preference.Second, (double)Math.Max(first, second) / (first + second));
    }

    /// <summary>Runs the collection and writes the pairs to <paramref name="outputPath"/> (JSONL, replaced atomically at the end).</summary>
    /// <exception cref="ArgumentException">No generators or judges, or BestVsRest without a quality score.</exception>
    public async Task<CollectionReport> CollectAsync(IEnumerable<string> prompts, string outputPath, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        if (generators.Count == 0 || judges.Count == 0)
            throw new ArgumentException("A collector needs at least one generator and one judge.");
        if (_options.Pairing == PairingStrategy.BestVsRest && _options.QualityScore is null)
            throw new ArgumentException("BestVsRest pairing needs a QualityScore.", nameof(options));

        var random = new Random(_options.Seed);
        int promptCount = 0, completionCount = 0, judged = 0, written = 0, ties = 0, flagged = 0;
        string temporary = outputPath + ".tmp";
        await using (var writer = new StreamWriter(temporary))
        {
            foreach (string prompt in prompts)
            {
                cancellationToken.ThrowIfCancellationRequested();
                promptCount++;
                var completions = new List<string>();
                foreach (ICompletionGenerator generator in generators)
                    completions.AddRange(await generator.GenerateAsync(prompt, _options.CompletionsPerGenerator, cancellationToken).ConfigureAwait(false));
                completions = completions.Where(c => !string.IsNullOrWhiteSpace(c)).Distinct(StringComparer.Ordinal).ToList();
                completionCount += completions.Count;

                foreach (var (a, b) in Pairs(prompt, completions, random))
                {
                    var votes = new Dictionary<string, Preference>();
                    foreach (IPreferenceJudge judge in judges)
                        votes[judge.Name] = (await judge.JudgeAsync(prompt, a, b, cancellationToken).ConfigureAwait(false)).Preferred;
                    judged++;
                    var (majority, agreement) = Resolve(votes.Values);
                    if (majority == Preference.Tie)
                    {
                        ties++;
                        continue;
                    }
                    bool isFlagged = 1 - agreement > _options.DisagreementThreshold;
                    if (isFlagged)
                        flagged++;
                    if (isFlagged && _options.ExcludeFlagged)
                        continue;
                    var (chosen, rejected) = majority == Preference.First ? (a, b) : (b, a);
                    var line = new JsonObject
                    {
                        ["prompt"] = prompt,
                        ["chosen"] = chosen,
                        ["rejected"] = rejected,
                        ["agreement"] = agreement,
                        ["flagged"] = isFlagged,
                        ["votes"] = new JsonObject(votes.Select(v => new KeyValuePair<string, JsonNode?>(v.Key,
                            v.Value == Preference.Tie ? "tie" : (v.Value == majority ? "chosen" : "rejected")))),
                    };
                    await writer.WriteLineAsync(line.ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping })).ConfigureAwait(false);
                    written++;
                }
            }
        }
        File.Move(temporary, outputPath, overwrite: true);
        return new CollectionReport(promptCount, completionCount, judged, written, ties, flagged);
    }

    IEnumerable<(string, string)> Pairs(string prompt, List<string> completions, Random random)
    {
        switch (_options.Pairing)
        {
            case PairingStrategy.AllPairs:
                for (int i = 0; i < completions.Count; i++)
                    for (int j = i + 1; j < completions.Count; j++)
                        yield return (completions[i], completions[j]);
                break;
            case PairingStrategy.Random:
                var shuffled = completions.OrderBy(_ => random.Next()).ToList();
                for (int i = 0; i + 1 < shuffled.Count; i += 2)
                    yield return (shuffled[i], shuffled[i + 1]);
                break;
            case PairingStrategy.BestVsRest:
                if (completions.Count < 2)
                    yield break;
                string best = completions.MaxBy(c => _options.QualityScore!(prompt, c))!;
                foreach (string other in completions.Where(c => !ReferenceEquals(c, best)))
                    yield return (best, other);
                break;
        }
    }
}
