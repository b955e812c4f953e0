namespace Alignment.Annotation;

/// <summary>One rater's figures on the dashboard.</summary>
/// <param name="Name">The rater.</param>
/// <param name="Done">Labels given (skips excluded).</param>
/// <param name="Skipped">Items skipped.</param>
/// <param name="Remaining">Items still open to them.</param>
/// <param name="LeftChoiceRate">Share of their A/B decisions that picked the left side (position bias; 0.5 is none); NaN without decisions.</param>
/// <param name="MedianSeconds">Median time per label; NaN without labels.</param>
public sealed record RaterFigures(string Name, int Done, int Skipped, int Remaining, double LeftChoiceRate, double MedianSeconds);

/// <summary>Cohen's κ of two raters over the items both labelled.</summary>
public sealed record PairAgreement(string First, string Second, int CommonItems, double Kappa);

/// <summary>An item whose raters disagree past the threshold.</summary>
public sealed record FlaggedItem(long ItemId, long Line, double Disagreement, IReadOnlyList<string> Labels);

/// <summary>What the lead sees: progress per rater, agreement, and the items to look at.</summary>
public sealed record DashboardReport(
    int Items, int Complete, int WithMajority, int WithDisagreement, double FleissKappa,
    IReadOnlyList<RaterFigures> Raters, IReadOnlyList<PairAgreement> Pairs, IReadOnlyList<FlaggedItem> Flagged)
{
    /// <summary>
    /// Computes the report. Labels: pairwise <c>a</c>/<c>b</c>/<c>tie</c>; rating mode one label per completion (its
    /// score), so κ counts each (item, completion) as a unit. Disagreement of an item with two or more labels: pairwise
    /// 1 − the share of its most common label (a, b or tie); rating mode the largest score range of a completion over 4.
    /// Majority: pairwise a strict a/b majority (<see cref="Agreement.Majority"/>); every rated item has one (mean scores).
    /// </summary>
    /// <param name="store">The store.</param>
    /// <param name="disagreementThreshold">Items past it are flagged.</param>
    public static DashboardReport Compute(IAnnotationStore store, double disagreementThreshold)
    {
        IReadOnlyList<Candidate> items = store.Items();
        IReadOnlyList<Rater> raters = store.Raters();
        var votes = store.Votes();
        var labelled = votes.Where(v => v.Choice != "skip").ToList();
        bool rating = store.Mode == AnnotationMode.Rating;
        // Units of agreement: (item, completion) in rating mode, the item itself in pairwise mode.
        IEnumerable<(long Item, int Unit, long Rater, string Label)> Units(StoredVote v) => rating
            ? v.Ratings!.Select((score, i) => (v.ItemId, i, v.RaterId, score.ToString(System.Globalization.CultureInfo.InvariantCulture)))
            : [(v.ItemId, 0, v.RaterId, v.Choice)];
        var units = labelled.SelectMany(Units).ToList();
        var byItem = labelled.GroupBy(v => v.ItemId).ToDictionary(g => g.Key, g => g.ToList());

        var figures = raters.Select(r =>
        {
            var own = votes.Where(v => v.RaterId == r.Id).ToList();
            var decisions = own.Where(v => v.Choice is "a" or "b").ToList();
            var seconds = own.Where(v => v.Choice != "skip").Select(v => v.Seconds).Order().ToList();
            return new RaterFigures(r.Name, own.Count(v => v.Choice != "skip"), own.Count(v => v.Choice == "skip"), store.Progress(r).Remaining,
                decisions.Count == 0 ? double.NaN : decisions.Count(v => (v.Choice == "a") == v.LeftWasA) / (double)decisions.Count,
                seconds.Count == 0 ? double.NaN : seconds.Count % 2 == 1 ? seconds[seconds.Count / 2] : (seconds[seconds.Count / 2 - 1] + seconds[seconds.Count / 2]) / 2);
        }).ToList();

        var pairs = new List<PairAgreement>();
        for (int i = 0; i < raters.Count; i++)
            for (int j = i + 1; j < raters.Count; j++)
            {
                var first = units.Where(u => u.Rater == raters[i].Id).ToDictionary(u => (u.Item, u.Unit), u => u.Label);
                var common = units.Where(u => u.Rater == raters[j].Id && first.ContainsKey((u.Item, u.Unit)))
                    .Select(u => (first[(u.Item, u.Unit)], u.Label)).ToList();
                if (common.Count > 0)
                    pairs.Add(new PairAgreement(raters[i].Name, raters[j].Name, common.Count, Agreement.CohensKappa(common)));
            }
        double fleiss = Agreement.FleissKappa(units.GroupBy(u => (u.Item, u.Unit)).Select(g => (IReadOnlyList<string>)g.Select(u => u.Label).ToList()));

        var flagged = new List<FlaggedItem>();
        int withMajority = 0, withDisagreement = 0;
        foreach (Candidate item in items)
        {
            if (!byItem.TryGetValue(item.Id, out var itemVotes) || itemVotes.Count < 2)
                continue;
            double disagreement;
            if (rating)
            {
                disagreement = Enumerable.Range(0, item.Completions.Count)
                    .Max(c => (itemVotes.Max(v => v.Ratings![c]) - itemVotes.Min(v => v.Ratings![c])) / 4.0);
                withMajority++;
            }
            else
            {
                withMajority += Agreement.Majority(itemVotes.Select(v => v.Choice)).Majority is null ? 0 : 1;
                disagreement = 1 - itemVotes.GroupBy(v => v.Choice).Max(g => g.Count()) / (double)itemVotes.Count;
            }
            if (disagreement > 0)
                withDisagreement++;
            if (disagreement > disagreementThreshold)
                flagged.Add(new FlaggedItem(item.Id, item.Line, disagreement,
                    itemVotes.Select(v => rating ? string.Join("/", v.Ratings!) : v.Choice).ToList()));
        }
        int complete = items.Count(i => byItem.TryGetValue(i.Id, out var v) && v.Count >= store.LabelsPerExample);
        return new DashboardReport(items.Count, complete, withMajority, withDisagreement, fleiss, figures, pairs, flagged);
    }
}
