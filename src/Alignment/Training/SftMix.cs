using Alignment.Data;

namespace Alignment.Training;

/// <summary>How SFT data is mixed into preference training.</summary>
public enum SftMixMode
{
    /// <summary>Every step adds <c>weight · NLL</c> of one SFT batch to the preference loss.</summary>
    Interleaved,

    /// <summary>Every ⌈1/weight⌉-th optimizer step is a plain SFT step instead of a preference step (weight is the share of SFT steps).</summary>
    Sequential,
}

/// <summary>SFT data mixed into preference training, a guard against forgetting what SFT taught.</summary>
/// <param name="Data">The SFT examples (cycled through in order).</param>
/// <param name="Weight">Interleaved: the SFT loss weight; Sequential: the share of SFT steps, in (0, 1).</param>
/// <param name="Mode">How the two are mixed.</param>
public sealed record SftMix(IReadOnlyList<TokenizedCompletion> Data, double Weight = 0.5, SftMixMode Mode = SftMixMode.Interleaved)
{
    /// <summary>Checks the values, reporting every one out of range at once.</summary>
    /// <exception cref="ArgumentException">No data, or a weight out of range; the message names each.</exception>
    public void Validate() => new OptionErrors()
        .Check(Data is { Count: > 0 }, "SFT mixing needs at least one SFT example.")
        .Check(Weight > 0 && double.IsFinite(Weight), $"the SFT mix weight must be a finite number > 0, got {Weight}.")
        .Check(Mode != SftMixMode.Sequential || Weight < 1, $"the sequential SFT mix weight is the share of SFT steps and must be < 1, got {Weight}.")
        .ThrowIfAny();
}
