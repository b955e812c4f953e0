using Alignment.Rl;

namespace Alignment.Cli.Arguments;

/// <summary>TRL's PPO/GRPO/RLOO config options.</summary>
internal sealed class RlArguments : IArgumentGroup
{
    static readonly PpoOptions Defaults = new();
    public Option<string?> RewardModel { get; } = CliOption.Text("reward-model", "A reward-model folder written by 'align reward' (or a transformers sequence-classification folder with one label); " +
        "this, --reward-funcs, or both.", null, "reward_model_path", "reward-model-path", "reward_model_name_or_path");
    readonly Option<double?> _klCoef;
    readonly Option<string?> _klEstimator = CliOption.Choice("kl-estimator", "Per-token KL estimator.", "k1", ["k1", "k3"]);
    readonly Option<double?> _clipRange = CliOption.Double("cliprange", "ε of the clipped surrogate (the lower clip 1 − ε).", Defaults.ClipRange, "epsilon");
    readonly Option<double?> _epsilonHigh = CliOption.Double("epsilon-high", "GRPO/RLOO: the upper clip 1 + ε_high (DAPO's clip-higher); --cliprange when not given.", Defaults.EpsilonHigh);
    readonly Option<string?> _lossType = CliOption.Choice("loss-type", "GRPO/RLOO: how the per-token loss is averaged (grpo, bnpo, dr_grpo, dapo).", "dapo",
        ["grpo", "bnpo", "dr_grpo", "dapo"]);
    readonly Option<string?> _samplingLevel = CliOption.Choice("importance-sampling-level", "GRPO/RLOO: token ratios, or GSPO's sequence-level ratio.", "token", ["token", "sequence"]);
    readonly Option<string?> _scaleRewards = CliOption.Choice("scale-rewards", "GRPO: divide centred rewards by the group's std, the batch's, or nothing.", "group", ["group", "batch", "none"]);
    readonly Option<bool> _maskTruncated = CliOption.Flag("mask-truncated-completions", "Completions that end without EOS take no part in the loss.");
    readonly Option<double?> _clipRangeValue = CliOption.Double("cliprange-value", "Clip range of the value loss.", Defaults.ClipRangeValue);
    readonly Option<double?> _vfCoef = CliOption.Double("vf-coef", "Weight of the value loss.", Defaults.VfCoef);
    readonly Option<double?> _gamma = CliOption.Double("gamma", "Discount of GAE.", Defaults.Gamma);
    readonly Option<double?> _lambda = CliOption.Double("lam", "λ of GAE.", Defaults.Lambda);
    readonly Option<int?> _ppoEpochs = CliOption.Int("num-ppo-epochs", "Passes over each rollout (GRPO's num_iterations μ).", Defaults.PpoEpochs, "num_iterations", "num-iterations");
    readonly Option<int?> _miniBatches = CliOption.Int("num-mini-batches", "Minibatches per pass.", Defaults.MiniBatches);
    readonly Option<int?> _responseLength = CliOption.Int("response-length", "New tokens per completion.", Defaults.ResponseLength, "max_completion_length");
    readonly Option<double?> _temperature = CliOption.Double("temperature", "Sampling temperature of the rollouts.", Defaults.Temperature);
    readonly Option<int?> _topK = CliOption.Int("top-k", "Top-k of the rollouts; 0 = off.", Defaults.TopK);
    readonly Option<double?> _topP = CliOption.Double("top-p", "Top-p of the rollouts; 1 = off.", Defaults.TopP);
    readonly Option<double?> _missingEos = CliOption.Double("missing-eos-penalty", "Subtracted from the score of completions that end without EOS.", Defaults.MissingEosPenalty);
    readonly Option<double?> _klTarget = CliOption.Double("kl-target", "Target KL of the adaptive KL controller (Ziegler et al.); fixed --kl-coef when not given.", Defaults.KlTarget, "target");
    readonly Option<double?> _klHorizon = CliOption.Double("kl-horizon", "Horizon of the adaptive KL controller.", Defaults.KlHorizon, "horizon");
    readonly Option<double?> _entropyCoef = CliOption.Double("entropy-coef", "Weight of an entropy bonus; 0 = off.", Defaults.EntropyCoef);
    readonly Option<int?> _generations = CliOption.Int("num-generations", "Samples per prompt (GRPO, RLOO).", Defaults.NumGenerations, "rloo_k", "rloo-k");

    /// <param name="algorithm">The command's algorithm: GRPO's β defaults to 0 (TRL's default, and then no reference runs), PPO's and RLOO's to 0.05.</param>
    public RlArguments(RlAlgorithm algorithm)
    {
        _klCoef = CliOption.Double("kl-coef", "β of the KL term to the reference; 0 = none, and no reference model is loaded.",
            algorithm == RlAlgorithm.Grpo ? 0 : Defaults.KlCoef, "beta");
    }

    public IEnumerable<Option> Options => new Option[] { RewardModel, _klCoef, _klEstimator, _clipRange, _clipRangeValue, _vfCoef, _gamma, _lambda,
                     _ppoEpochs, _miniBatches, _responseLength, _temperature, _topK, _topP, _missingEos, _generations, _klTarget, _klHorizon, _entropyCoef,
                     _epsilonHigh, _lossType, _samplingLevel, _scaleRewards, _maskTruncated };

    /// <summary>The options, validated together with the engine's (every bad value named at once).</summary>
    public PpoOptions Read(ParseResult parse, RlAlgorithm algorithm, Training.TrainingOptions training)
    {
        var options = new PpoOptions
        {
            Algorithm = algorithm,
            Training = training,
            KlCoef = parse.GetValue(_klCoef)!.Value,
            KlEstimator = parse.GetValue(_klEstimator) == "k3" ? KlEstimator.K3 : KlEstimator.K1,
            ClipRange = parse.GetValue(_clipRange)!.Value,
            ClipRangeValue = parse.GetValue(_clipRangeValue)!.Value,
            VfCoef = parse.GetValue(_vfCoef)!.Value,
            Gamma = parse.GetValue(_gamma)!.Value,
            Lambda = parse.GetValue(_lambda)!.Value,
            PpoEpochs = parse.GetValue(_ppoEpochs)!.Value,
            MiniBatches = parse.GetValue(_miniBatches)!.Value,
            ResponseLength = parse.GetValue(_responseLength)!.Value,
            Temperature = parse.GetValue(_temperature)!.Value,
            TopK = parse.GetValue(_topK)!.Value,
            TopP = parse.GetValue(_topP)!.Value,
            MissingEosPenalty = parse.GetValue(_missingEos),
            NumGenerations = parse.GetValue(_generations)!.Value,
            KlTarget = parse.GetValue(_klTarget),
            KlHorizon = parse.GetValue(_klHorizon)!.Value,
            EntropyCoef = parse.GetValue(_entropyCoef)!.Value,
            EpsilonHigh = parse.GetValue(_epsilonHigh),
            LossType = parse.GetValue(_lossType) switch { "grpo" => GrpoLossType.Grpo, "bnpo" => GrpoLossType.Bnpo, "dr_grpo" => GrpoLossType.DrGrpo, _ => GrpoLossType.Dapo },
            ImportanceSamplingLevel = parse.GetValue(_samplingLevel) == "sequence" ? ImportanceSamplingLevel.Sequence : ImportanceSamplingLevel.Token,
            ScaleRewards = parse.GetValue(_scaleRewards) switch { "batch" => RewardScaling.Batch, "none" => RewardScaling.None, _ => RewardScaling.Group },
            MaskTruncatedCompletions = parse.GetValue(_maskTruncated),
        };
        options.Validate();
        return options;
    }
}
