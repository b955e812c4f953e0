using System.Globalization;
using Alignment.Losses;

namespace Alignment.Cli.Arguments;

/// <summary>The preference loss and every option of TRL's DPO/CPO/ORPO/KTO configs that the built-in losses read.</summary>
internal sealed class LossArguments : IArgumentGroup
{
    static readonly PreferenceLossOptions Defaults = new();
    readonly Option<string?> _loss = CliOption.Text("loss", "Loss name, or a comma-separated list for a weighted mix: " + string.Join(", ", PreferenceLosses.Names) + ".",
        "sigmoid", "loss_type", "loss-type");
    readonly Option<string?> _weights = CliOption.Text("loss-weights", "Comma-separated weights, one per loss of --loss.");
    readonly Option<double?> _beta = CliOption.Double("beta", "β: strength of the implicit KL regularisation (ORPO's λ).", Defaults.Beta);
    readonly Option<double?> _labelSmoothing = CliOption.Double("label-smoothing", "ε: assumed probability of a flipped label (cDPO, robust, EXO, AOT, CPO).", Defaults.LabelSmoothing);
    readonly Option<double?> _rpoAlpha = CliOption.Double("rpo-alpha", "Weight of the chosen completions' NLL added to the loss (RPO).", Defaults.RpoAlpha);
    readonly Option<double?> _simpoGamma = CliOption.Double("simpo-gamma", "SimPO's target reward margin γ.", Defaults.SimpoGamma);
    readonly Option<double?> _cpoAlpha = CliOption.Double("cpo-alpha", "Weight of the chosen NLL in CPO (default 1) and CPO-SimPO (default 0).", Defaults.CpoAlpha);
    readonly Option<double?> _desirableWeight = CliOption.Double("desirable-weight", "KTO's λD.", Defaults.DesirableWeight);
    readonly Option<double?> _undesirableWeight = CliOption.Double("undesirable-weight", "KTO's λU.", Defaults.UndesirableWeight);
    readonly Option<double?> _discopopTau = CliOption.Double("discopop-tau", "Temperature of DiscoPOP's mixing sigmoid.", Defaults.DiscopopTau);
    readonly Option<double?> _ldAlpha = CliOption.Double("ld-alpha", "LD-DPO's weight on tokens past the shorter completion's length.", Defaults.LdAlpha);
    readonly Option<string?> _fDivergence = CliOption.Choice("f-divergence-type", "The f-divergence regularising towards the reference (f-DPO).", "reverse_kl",
        ["reverse_kl", "forward_kl", "js_divergence", "alpha_divergence"]);
    readonly Option<double?> _alphaCoef = CliOption.Double("f-alpha-divergence-coef", "α of the alpha divergence.", Defaults.AlphaDivergenceCoef);
    readonly Option<bool> _useWeighting = CliOption.Flag("use-weighting", "Weight each pair by its WPO weight.");
    readonly Option<bool> _referenceFree = CliOption.Flag("reference-free", "Use a uniform reference: log-ratios are the policy's log-probabilities.");

    public IEnumerable<Option> Options => new Option[] { _loss, _weights, _beta, _labelSmoothing, _rpoAlpha, _simpoGamma, _cpoAlpha, _desirableWeight,
                     _undesirableWeight, _discopopTau, _ldAlpha, _fDivergence, _alphaCoef, _useWeighting, _referenceFree };

    /// <summary>The loss, created (so that unknown names and bad values fail before anything loads).</summary>
    public IPreferenceLoss Create(ParseResult parse, Microsoft.Extensions.Logging.ILogger? logger = null)
    {
        var options = new PreferenceLossOptions
        {
            Beta = parse.GetValue(_beta)!.Value,
            LabelSmoothing = parse.GetValue(_labelSmoothing)!.Value,
            RpoAlpha = parse.GetValue(_rpoAlpha),
            SimpoGamma = parse.GetValue(_simpoGamma)!.Value,
            CpoAlpha = parse.GetValue(_cpoAlpha),
            DesirableWeight = parse.GetValue(_desirableWeight)!.Value,
            UndesirableWeight = parse.GetValue(_undesirableWeight)!.Value,
            DiscopopTau = parse.GetValue(_discopopTau)!.Value,
            LdAlpha = parse.GetValue(_ldAlpha),
            FDivergence = parse.GetValue(_fDivergence) switch
            {
                "forward_kl" => FDivergence.ForwardKl,
                "js_divergence" => FDivergence.JensenShannon,
                "alpha_divergence" => FDivergence.AlphaDivergence,
                _ => FDivergence.ReverseKl,
            },
            AlphaDivergenceCoef = parse.GetValue(_alphaCoef)!.Value,
            UseWeighting = parse.GetValue(_useWeighting),
            ReferenceFree = parse.GetValue(_referenceFree),
        };
        string[] names = parse.GetValue(_loss)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        double[]? weights = parse.GetValue(_weights)?.Split(',').Select(Weight).ToArray();
        return PreferenceLosses.Create(names, weights, options, logger);
    }

    static double Weight(string text) =>
        double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double value) && double.IsFinite(value) ? value
            : throw new ArgumentException($"--loss-weights: '{text.Trim()}' is not a number.");
}
