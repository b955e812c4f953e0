using static TorchSharp.torch;

namespace Alignment.Losses;

/// <summary>
/// A preference-training objective: turns one batch's forward results into a loss that back-propagates and a set
/// of named metrics. Implement it to bring your own loss; <see cref="PreferenceLosses"/> creates the built-in ones.
/// </summary>
public interface IPreferenceLoss
{
    /// <summary>The name the loss is registered and logged under (for example <c>sigmoid</c>, <c>kto</c>).</summary>
    string Name { get; }

    /// <summary>What the trainer must compute for <see cref="Compute"/>; it computes nothing else.</summary>
    LossRequirements Requirements { get; }

    /// <summary>Computes the loss of one batch.</summary>
    /// <param name="forward">The batch's log-probabilities; the fields <see cref="Requirements"/> asks for are set.</param>
    /// <returns>A scalar loss attached to the policy's graph, and detached scalar metrics.</returns>
    /// <exception cref="InvalidOperationException">A field the loss requires is missing.</exception>
    PreferenceLossOutput Compute(PreferenceForward forward);
}

/// <summary>The shape of data a loss trains on.</summary>
public enum PreferenceDataKind
{
    /// <summary>Each example has a chosen and a rejected completion for one prompt.</summary>
    Paired,

    /// <summary>Each example has one completion labelled desirable or undesirable (KTO).</summary>
    Unpaired,
}

/// <summary>What a loss needs from the trainer's forward passes.</summary>
/// <param name="Data">Paired (chosen/rejected) or unpaired (completion + label) batches.</param>
/// <param name="Reference">Reference-model log-probabilities (live or precomputed). False for reference-free losses.</param>
/// <param name="KlCompletions">Log-probabilities of mismatched prompt/completion pairs for KTO's KL estimate.</param>
/// <param name="PerTokenLogProbs">The policy's per-token log-probabilities and masks, not only their sums (LD-DPO).</param>
/// <param name="WpoWeights">Per-sequence WPO log-weights of the policy (<see cref="CompletionLogProbs.WpoLogWeights"/>).</param>
/// <param name="LengthNormalized">The loss divides log-probabilities by completion length (informational: derived from counts).</param>
/// <param name="ChosenNll">The loss uses the negative log-likelihood of the chosen completions (derived from the chosen log-probabilities).</param>
public sealed record LossRequirements(
    PreferenceDataKind Data,
    bool Reference,
    bool KlCompletions = false,
    bool PerTokenLogProbs = false,
    bool WpoWeights = false,
    bool LengthNormalized = false,
    bool ChosenNll = false)
{
    /// <summary>
    /// The loss's gradient with respect to one pair's log-probabilities depends on that pair's values only: the loss is a
    /// sum of per-pair terms (a mean over pairs qualifies, and so does a term linear in the log-probabilities such as a
    /// token-mean NLL over the batch), with no statistic of the batch's values (a sort, a running mean, a batch-wide KL
    /// estimate). Then the trainer forms the gradients pair by pair while each pair's logits are at hand — three
    /// matmuls, as the naive path, and no logits kept — by evaluating <see cref="IPreferenceLoss.Compute"/> with the other
    /// pairs' values set to 0. False (the default) keeps the general path, which makes the logits again in backward.
    /// </summary>
    public bool SeparableByPair { get; init; }

    /// <summary>The union of several losses' requirements; they must agree on the data kind.</summary>
    /// <exception cref="ArgumentException">The losses train on different data kinds.</exception>
    public static LossRequirements Union(IEnumerable<LossRequirements> all)
    {
        LossRequirements[] list = all.ToArray();
        if (list.Length == 0)
            throw new ArgumentException("At least one loss is required.", nameof(all));
        if (list.Select(r => r.Data).Distinct().Count() > 1)
            throw new ArgumentException("Losses for paired and for unpaired data cannot be combined.", nameof(all));
        return new LossRequirements(list[0].Data,
            list.Any(r => r.Reference), list.Any(r => r.KlCompletions), list.Any(r => r.PerTokenLogProbs),
            list.Any(r => r.WpoWeights), list.Any(r => r.LengthNormalized), list.Any(r => r.ChosenNll))
        {
            SeparableByPair = list.All(r => r.SeparableByPair),
        };
    }
}

/// <summary>The result of <see cref="IPreferenceLoss.Compute"/>.</summary>
/// <param name="Loss">Scalar loss to minimise, attached to the policy's graph.</param>
/// <param name="Metrics">
/// Detached scalars keyed by TRL's names (<c>rewards/chosen</c>, <c>rewards/rejected</c>, <c>rewards/accuracies</c>,
/// <c>rewards/margins</c>, <c>logps/chosen</c>, <c>logps/rejected</c>, and loss-specific ones such as <c>kl</c>).
/// </param>
public sealed record PreferenceLossOutput(Tensor Loss, IReadOnlyDictionary<string, Tensor> Metrics);
