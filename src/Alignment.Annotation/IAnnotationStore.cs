namespace Alignment.Annotation;

/// <summary>
/// Where items, raters and votes live. Every write is durable when the call returns (a vote acknowledged to a rater
/// survives the process being killed). <see cref="SqliteAnnotationStore"/> is the embedded default; a server database
/// implements the same calls.
/// </summary>
public interface IAnnotationStore : IDisposable
{
    /// <summary>Pairwise or rating.</summary>
    AnnotationMode Mode { get; }

    /// <summary>How many different raters label each item.</summary>
    int LabelsPerExample { get; }

    /// <summary>The secret the dashboard and export ask for.</summary>
    string AdminToken { get; }

    /// <summary>Stores the items once; a store that has items keeps them (the same input must be given again).</summary>
    /// <exception cref="InvalidOperationException">The store holds a different set of items.</exception>
    void Import(IReadOnlyList<Candidate> items);

    /// <summary>Every item, by id.</summary>
    IReadOnlyList<Candidate> Items();

    /// <summary>The item with this id, or null.</summary>
    Candidate? Item(long id);

    /// <summary>Creates a rater with a fresh secret token.</summary>
    /// <exception cref="ArgumentException">The name is empty or taken.</exception>
    Rater AddRater(string name);

    /// <summary>Every rater.</summary>
    IReadOnlyList<Rater> Raters();

    /// <summary>The rater with this name, or null.</summary>
    Rater? RaterNamed(string name);

    /// <summary>
    /// The next item for <paramref name="rater"/>: one they have neither labelled nor skipped, that still lacks labels,
    /// in an order of the rater's own; null when none is left.
    /// </summary>
    Candidate? Next(Rater rater);

    /// <summary>(labels and skips given, items still open to the rater).</summary>
    (int Done, int Remaining) Progress(Rater rater);

    /// <summary>Stores a vote unless the rater already voted on the item or it has its labels (skips do not count).</summary>
    VoteOutcome Vote(Rater rater, StoredVote vote);

    /// <summary>Removes the rater's latest vote and returns its item, or null when they have none.</summary>
    long? Undo(Rater rater);

    /// <summary>Every vote, oldest first.</summary>
    IReadOnlyList<StoredVote> Votes();
}
