namespace Alignment.Annotation;

/// <summary>A person who labels items.</summary>
/// <param name="Id">Store id.</param>
/// <param name="Name">Unique name, shown on the dashboard.</param>
/// <param name="Token">The secret in the rater's personal link; whoever holds it votes as this rater.</param>
public sealed record Rater(long Id, string Name, string Token);

/// <summary>A label as stored.</summary>
/// <param name="ItemId">The item.</param>
/// <param name="RaterId">Who gave it.</param>
/// <param name="Choice">Pairwise: <c>a</c>, <c>b</c>, <c>tie</c> or <c>skip</c>; rating mode: <c>rated</c> or <c>skip</c>.</param>
/// <param name="Ratings">Rating mode: one score 1–5 per completion; else null.</param>
/// <param name="LeftWasA">Whether completion A was shown on the left.</param>
/// <param name="Seconds">Time from showing the item to the vote.</param>
public sealed record StoredVote(long ItemId, long RaterId, string Choice, IReadOnlyList<int>? Ratings, bool LeftWasA, double Seconds);

/// <summary>The outcome of a vote.</summary>
public enum VoteOutcome
{
    /// <summary>Stored and committed.</summary>
    Accepted,

    /// <summary>The item already has its labels.</summary>
    ItemFull,

    /// <summary>This rater already labelled or skipped the item.</summary>
    AlreadyVoted,

    /// <summary>No such item.</summary>
    UnknownItem,
}
