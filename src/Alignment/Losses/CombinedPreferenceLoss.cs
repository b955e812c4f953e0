using static TorchSharp.torch;

namespace Alignment.Losses;

/// <summary>
/// A weighted sum of losses on the same data, for example MPO's <c>sigmoid</c> 0.8 + <c>bco_pair</c> 0.2 + <c>sft</c> 1.0.
/// Its requirements are the union of its parts'. Metrics are the first part's, plus <c>loss/NAME</c> for each part
/// (unweighted).
/// </summary>
public sealed class CombinedPreferenceLoss : IPreferenceLoss
{
    readonly (IPreferenceLoss Loss, double Weight)[] _parts;

    /// <summary>Combines losses with weights.</summary>
    /// <param name="parts">Each loss with its weight (finite, ≥ 0).</param>
    /// <exception cref="ArgumentException">No parts, a bad weight, or parts for different data kinds.</exception>
    public CombinedPreferenceLoss(IEnumerable<(IPreferenceLoss Loss, double Weight)> parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        _parts = parts.ToArray();
        if (_parts.Length == 0)
            throw new ArgumentException("A combined loss needs at least one part.", nameof(parts));
        foreach (var (loss, weight) in _parts)
        {
            ArgumentNullException.ThrowIfNull(loss, nameof(parts));
            if (!(weight >= 0) || double.IsInfinity(weight))
                throw new ArgumentException($"The weight of '{loss.Name}' must be a finite number >= 0, got {weight}.", nameof(parts));
        }
        Requirements = LossRequirements.Union(_parts.Select(p => p.Loss.Requirements));
        Name = string.Join("+", _parts.Select(p => p.Loss.Name));
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public LossRequirements Requirements { get; }

    /// <summary>The parts and their weights.</summary>
    public IReadOnlyList<(IPreferenceLoss Loss, double Weight)> Parts => _parts;

    /// <inheritdoc />
    public PreferenceLossOutput Compute(PreferenceForward forward)
    {
        using var scope = NewDisposeScope();
        Tensor? total = null;
        Dictionary<string, Tensor>? metrics = null;
        foreach (var (loss, weight) in _parts)
        {
            PreferenceLossOutput part = loss.Compute(forward);
            total = total is null ? part.Loss.mul(weight) : total.add(part.Loss.mul(weight));
            metrics ??= new Dictionary<string, Tensor>(part.Metrics);
            metrics[$"loss/{loss.Name}"] = part.Loss.detach();
        }
        return LossMath.Keep(total!, metrics!);
    }
}
