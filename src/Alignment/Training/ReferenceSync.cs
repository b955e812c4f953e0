namespace Alignment.Training;

/// <summary>
/// TR-DPO's reference update (TRL's <c>sync_ref_model</c>): after every <paramref name="SyncSteps"/>-th optimizer step
/// the reference's weights become <c>α·policy + (1 − α)·reference</c>. The reference must be a model of its own (a frozen
/// copy, or one loaded from a folder): with LoRA the reference is the policy's own base weights with the adapters off,
/// and there is nothing separate to update — refused, as TRL refuses it. Precomputed reference log-probabilities would
/// go stale and are refused too. Checkpoints keep the synced reference, so a resumed run equals a straight one.
/// </summary>
/// <param name="MixupAlpha"><c>ref_model_mixup_alpha</c> α, in (0, 1] (TRL's default 0.6).</param>
/// <param name="SyncSteps"><c>ref_model_sync_steps</c>: optimizer steps between updates (TRL's default 512).</param>
public sealed record ReferenceSync(double MixupAlpha = 0.6, int SyncSteps = 512)
{
    /// <summary>Checks the values, reporting every one out of range at once.</summary>
    /// <exception cref="ArgumentException">A value is out of range; the message names each.</exception>
    public void Validate() => new OptionErrors()
        .Check(MixupAlpha is > 0 and <= 1, $"ref_model_mixup_alpha must be in (0, 1], got {MixupAlpha}.")
        .Check(SyncSteps >= 1, $"ref_model_sync_steps must be >= 1, got {SyncSteps}.")
        .ThrowIfAny();
}
