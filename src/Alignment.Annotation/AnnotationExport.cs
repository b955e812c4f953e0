using System.Text.Json.Nodes;

namespace Alignment.Annotation;

/// <summary>What an export wrote.</summary>
/// <param name="Pairs">Preference pairs written.</param>
/// <param name="NoMajority">Pairwise items with labels but no strict majority (left out).</param>
/// <param name="Flagged">Pairs past the disagreement threshold (left out with <c>excludeFlagged</c>).</param>
public sealed record ExportReport(int Pairs, int NoMajority, int Flagged);

/// <summary>
/// Writes the labels as the standard preference format that <c>align dpo</c> reads: <c>prompt</c>, <c>chosen</c>,
/// <c>rejected</c> in the input's own form (text or messages), with <c>agreement</c>, <c>votes</c>, <c>flagged</c> and
/// <c>source_line</c>. Pairwise items give their majority (ties are not votes); rated items give every pair of
/// completions whose mean scores differ by at least 1 (the rated-data rule of <c>PreferenceFormats.ReadRated</c>), with
/// <c>score_chosen</c>/<c>score_rejected</c>.
/// </summary>
public static class AnnotationExport
{
    /// <param name="store">The labels.</param>
    /// <param name="path">Output JSONL (written to a temporary file first, so that an earlier export is never half-overwritten).</param>
    /// <param name="disagreementThreshold">Disagreement past which a pair is flagged.</param>
    /// <param name="excludeFlagged">Leave flagged pairs out.</param>
    public static ExportReport Write(IAnnotationStore store, string path, double disagreementThreshold = 0.25, bool excludeFlagged = false)
    {
        var byItem = store.Votes().Where(v => v.Choice != "skip").GroupBy(v => v.ItemId).ToDictionary(g => g.Key, g => g.ToList());
        var lines = new List<string>();
        int noMajority = 0, flagged = 0;
        foreach (Candidate item in store.Items())
        {
            if (!byItem.TryGetValue(item.Id, out var votes))
                continue;
            foreach (var (chosen, rejected, agreement, extra) in Pairs(store.Mode, item, votes))
            {
                if (chosen < 0)
                {
                    noMajority++;
                    continue;
                }
                bool isFlagged = 1 - agreement > disagreementThreshold;
                flagged += isFlagged ? 1 : 0;
                if (isFlagged && excludeFlagged)
                    continue;
                var line = new JsonObject
                {
                    ["prompt"] = item.Prompt.DeepClone(),
                    ["chosen"] = item.Completions[chosen].DeepClone(),
                    ["rejected"] = item.Completions[rejected].DeepClone(),
                    ["agreement"] = agreement,
                    ["flagged"] = isFlagged,
                    ["source_line"] = item.Line,
                };
                foreach (var (key, value) in extra)
                    line[key] = value;
                lines.Add(line.ToJsonString());
            }
        }
        string temporary = path + ".partial";
        File.WriteAllLines(temporary, lines);
        File.Move(temporary, path, overwrite: true);
        return new ExportReport(lines.Count, noMajority, flagged);
    }

    static IEnumerable<(int Chosen, int Rejected, double Agreement, IReadOnlyList<(string, JsonNode)> Extra)> Pairs(
        AnnotationMode mode, Candidate item, List<StoredVote> votes)
    {
        if (mode == AnnotationMode.Pairwise)
        {
            var (majority, agreement) = Agreement.Majority(votes.Select(v => v.Choice));
            JsonNode counts = new JsonObject
            {
                ["a"] = votes.Count(v => v.Choice == "a"), ["b"] = votes.Count(v => v.Choice == "b"), ["tie"] = votes.Count(v => v.Choice == "tie"),
            };
            yield return majority is null ? (-1, -1, 0, []) : (majority == "a" ? 0 : 1, majority == "a" ? 1 : 0, agreement, [("votes", counts)]);
            yield break;
        }
        double[] means = Enumerable.Range(0, item.Completions.Count).Select(c => votes.Average(v => v.Ratings![c])).ToArray();
        for (int i = 0; i < means.Length; i++)
            for (int j = 0; j < means.Length; j++)
                if (means[i] - means[j] >= 1)
                {
                    // Agreement of a rated pair: the share of raters whose own scores order the two completions the same way.
                    double agreement = votes.Count(v => v.Ratings![i] > v.Ratings[j]) / (double)votes.Count;
                    yield return (i, j, agreement, [("score_chosen", means[i]), ("score_rejected", means[j]), ("votes", votes.Count)]);
                }
    }
}
