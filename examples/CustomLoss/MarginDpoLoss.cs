using Alignment.Losses;
using TorchSharp;
using static TorchSharp.torch;

namespace CustomLoss;

/// <summary>
/// DPO with a per-pair margin: <c>−log σ(β·Δ − α·m)</c>, where <c>Δ</c> is DPO's log-ratio difference and <c>m</c> how much
/// better the chosen answer was rated (ODPO, Amini et al. 2024). Pairs rated far apart must be separated further.
/// </summary>
public sealed class MarginDpoLoss(double beta, double alpha) : IPreferenceLoss
{
    public string Name => "margin_dpo";

    // Paired data and a reference model; nothing else (no per-token values, no KL pairs). Each pair's term depends on that
    // pair alone (a mean over pairs), so the trainer may form its gradients pair by pair on the fused lm_head path.
    public LossRequirements Requirements { get; } = new(PreferenceDataKind.Paired, Reference: true) { SeparableByPair = true };

    public PreferenceLossOutput Compute(PreferenceForward forward)
    {
        using var scope = NewDisposeScope();
        Tensor chosen = forward.Chosen!.Sums.sub(forward.ReferenceChosen!.Sums);       // log π/π_ref of chosen [B]
        Tensor rejected = forward.Rejected!.Sums.sub(forward.ReferenceRejected!.Sums); // log π/π_ref of rejected [B]
        Tensor margins = forward.Margins ?? zeros_like(chosen);
        Tensor logits = chosen.sub(rejected).mul(beta).sub(margins.mul(alpha));
        Tensor loss = nn.functional.logsigmoid(logits).neg().mean();

        var metrics = new Dictionary<string, Tensor>
        {
            ["rewards/margins"] = chosen.sub(rejected).mul(beta).mean().detach().MoveToOuterDisposeScope(),
            ["rewards/accuracies"] = chosen.gt(rejected).to_type(ScalarType.Float32).mean().detach().MoveToOuterDisposeScope(),
        };
        return new PreferenceLossOutput(loss.MoveToOuterDisposeScope(), metrics);
    }
}
