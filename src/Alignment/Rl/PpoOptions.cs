using Alignment.Training;

namespace Alignment.Rl;

/// <summary>Which on-policy algorithm <see cref="PpoLoop"/> runs.</summary>
public enum RlAlgorithm
{
    /// <summary>PPO with a value head, KL-penalised per-token rewards and GAE (InstructGPT's RLHF).</summary>
    Ppo,

    /// <summary>GRPO: G samples per prompt, group-normalised rewards as advantages, a k3 KL term in the loss; no value model.</summary>
    Grpo,

    /// <summary>RLOO: K samples per prompt, KL-penalised reward minus the mean of the other K − 1; no value model.</summary>
    Rloo,
}

/// <summary>
/// How GRPO and RLOO reduce the per-token loss of a minibatch to a scalar (TRL's <c>loss_type</c>); m the completion
/// mask, ℓ the per-token loss, B the minibatch's completions, L <c>response_length</c>.
/// </summary>
public enum GrpoLossType
{
    /// <summary><c>grpo</c>: each completion's token mean, then the mean over completions: <c>mean_b(Σ_t ℓm / Σ_t m)</c>; minibatches weigh equally.</summary>
    Grpo,

    /// <summary><c>bnpo</c>: the token mean over the minibatch, <c>Σ ℓm / Σ m</c>; minibatches weigh equally.</summary>
    Bnpo,

    /// <summary><c>dr_grpo</c> (Dr. GRPO): <c>Σ ℓm / (B · L)</c>, free of the length bias; minibatches weigh equally.</summary>
    DrGrpo,

    /// <summary><c>dapo</c> (TRL's default): the token mean over every minibatch of the update on every process, <c>Σ ℓm / Σ m</c> globally.</summary>
    Dapo,
}

/// <summary>Whose ratio GRPO clips (TRL's <c>importance_sampling_level</c>).</summary>
public enum ImportanceSamplingLevel
{
    /// <summary><c>token</c>: each token's own ratio π/π_old.</summary>
    Token,

    /// <summary><c>sequence</c> (GSPO): every token of a completion uses the geometric mean of its tokens' ratios, <c>exp(mean_t log π/π_old)</c>.</summary>
    Sequence,
}

/// <summary>What GRPO divides a sample's centred reward by (TRL's <c>scale_rewards</c>).</summary>
public enum RewardScaling
{
    /// <summary><c>group</c>: the standard deviation of its group's rewards.</summary>
    Group,

    /// <summary><c>batch</c>: the standard deviation of all the step's rewards (over every process).</summary>
    Batch,

    /// <summary><c>none</c>: nothing (Dr. GRPO).</summary>
    None,
}

/// <summary>
/// Settings of <see cref="PpoLoop"/>, named as in TRL's PPO/GRPO/RLOO configs. The optimisation and bookkeeping
/// settings are the engine's <see cref="TrainingOptions"/> in <see cref="Training"/>, read as: a step is one
/// rollout-and-update iteration; <c>per_device_train_batch_size</c> is the number of distinct prompts per iteration;
/// <c>max_steps</c> the number of iterations; <c>gradient_accumulation_steps</c> the minibatches whose gradients are
/// summed before each optimizer update.
/// </summary>
public sealed record PpoOptions
{
    /// <summary>The engine settings PPO starts from: <c>learning_rate</c> 3e-6, constant; 8 prompts per iteration; 50 iterations.</summary>
    public static TrainingOptions DefaultTraining { get; } = new()
    {
        LearningRate = 3e-6, Schedule = LearningRateSchedule.Constant, BatchSize = 8, MaxSteps = 50,
    };

    /// <summary>The algorithm.</summary>
    public RlAlgorithm Algorithm { get; init; } = RlAlgorithm.Ppo;
    /// <summary>Optimisation and bookkeeping: learning rate, prompts per iteration, iterations, accumulation, clipping, seed, output, checkpoints.</summary>
    public TrainingOptions Training { get; init; } = DefaultTraining;
    /// <summary><c>num_generations</c> (GRPO) / <c>rloo_k</c> (RLOO): samples per prompt; PPO samples one.</summary>
    public int NumGenerations { get; init; } = 4;
    /// <summary><c>num_ppo_epochs</c>.</summary>
    public int PpoEpochs { get; init; } = 4;
    /// <summary><c>num_mini_batches</c> per epoch.</summary>
    public int MiniBatches { get; init; } = 1;
    /// <summary><c>kl_coef</c> β (initial value when adaptive).</summary>
    public double KlCoef { get; init; } = 0.05;
    /// <summary>Target KL for the adaptive controller (Ziegler et al.); null = fixed coefficient.</summary>
    public double? KlTarget { get; init; }
    /// <summary>Horizon of the adaptive controller.</summary>
    public double KlHorizon { get; init; } = 10_000;
    /// <summary><c>kl_estimator</c>: k1 or k3 (GRPO always uses k3 in its loss).</summary>
    public KlEstimator KlEstimator { get; init; } = KlEstimator.K1;
    /// <summary><c>cliprange</c> ε.</summary>
    public double ClipRange { get; init; } = 0.2;
    /// <summary><c>cliprange_value</c>.</summary>
    public double ClipRangeValue { get; init; } = 0.2;
    /// <summary><c>vf_coef</c>.</summary>
    public double VfCoef { get; init; } = 0.1;
    /// <summary><c>gamma</c>.</summary>
    public double Gamma { get; init; } = 1.0;
    /// <summary><c>lam</c>.</summary>
    public double Lambda { get; init; } = 0.95;
    /// <summary>Entropy bonus coefficient (sampled-token estimate); 0 = off.</summary>
    public double EntropyCoef { get; init; }
    /// <summary><c>response_length</c>: new tokens per completion.</summary>
    public int ResponseLength { get; init; } = 53;
    /// <summary><c>temperature</c> of the rollouts.</summary>
    public double Temperature { get; init; } = 0.7;
    /// <summary><c>top_k</c> of the rollouts; 0 = off.</summary>
    public int TopK { get; init; }
    /// <summary><c>top_p</c> of the rollouts; 1 = off.</summary>
    public double TopP { get; init; } = 1.0;
    /// <summary><c>missing_eos_penalty</c>: subtracted from the score of completions that end without EOS; null = off.</summary>
    public double? MissingEosPenalty { get; init; }
    /// <summary><c>loss_type</c> of GRPO and RLOO (PPO always takes the token mean over the update).</summary>
    public GrpoLossType LossType { get; init; } = GrpoLossType.Dapo;
    /// <summary><c>epsilon_high</c>: the upper clip 1 + ε_high of the ratio (DAPO's clip-higher); null = <see cref="ClipRange"/>.</summary>
    public double? EpsilonHigh { get; init; }
    /// <summary><c>importance_sampling_level</c> of GRPO and RLOO.</summary>
    public ImportanceSamplingLevel ImportanceSamplingLevel { get; init; } = ImportanceSamplingLevel.Token;
    /// <summary><c>scale_rewards</c> of GRPO.</summary>
    public RewardScaling ScaleRewards { get; init; } = RewardScaling.Group;
    /// <summary><c>reward_weights</c>: one weight per reward function, in their order; null = all 1.</summary>
    public IReadOnlyList<double>? RewardWeights { get; init; }
    /// <summary><c>mask_truncated_completions</c>: completions that end without EOS take no part in the loss.</summary>
    public bool MaskTruncatedCompletions { get; init; }

    /// <summary>Checks the values (these and <see cref="Training"/>'s), reporting every one out of range at once.</summary>
    /// <exception cref="ArgumentException">A value is out of range; the message names each.</exception>
    public void Validate() => new OptionErrors()
        .Include(Training?.Problems() ?? ["the training options are missing."])
        .Check(Algorithm == RlAlgorithm.Ppo || NumGenerations >= 2, $"num_generations must be >= 2 for {Algorithm}, got {NumGenerations}.")
        .Check(PpoEpochs >= 1, $"num_ppo_epochs must be >= 1, got {PpoEpochs}.")
        .Check(MiniBatches >= 1, $"num_mini_batches must be >= 1, got {MiniBatches}.")
        .Check(ResponseLength >= 1, $"response_length must be >= 1, got {ResponseLength}.")
        .Check(KlCoef >= 0 && !double.IsInfinity(KlCoef), $"kl_coef must be a finite number >= 0, got {KlCoef}.")
        .Check(KlTarget is not { } target || target > 0 && !double.IsInfinity(target), $"the target KL must be a finite number > 0, got {KlTarget}.")
        .Check(KlHorizon > 0, $"the KL horizon must be > 0, got {KlHorizon}.")
        .Check(ClipRange > 0, $"cliprange must be > 0, got {ClipRange}.")
        .Check(EpsilonHigh is null or > 0, $"epsilon_high must be > 0, got {EpsilonHigh}.")
        .Check(Enum.IsDefined(LossType) && Enum.IsDefined(ImportanceSamplingLevel) && Enum.IsDefined(ScaleRewards), "loss_type, importance_sampling_level or scale_rewards is not one of its values.")
        .Check(ClipRangeValue > 0, $"cliprange_value must be > 0, got {ClipRangeValue}.")
        .Check(VfCoef >= 0 && !double.IsInfinity(VfCoef), $"vf_coef must be a finite number >= 0, got {VfCoef}.")
        .Check(Gamma is > 0 and <= 1, $"gamma must be in (0, 1], got {Gamma}.")
        .Check(Lambda is >= 0 and <= 1, $"lam must be in [0, 1], got {Lambda}.")
        .Check(EntropyCoef >= 0 && !double.IsInfinity(EntropyCoef), $"the entropy coefficient must be a finite number >= 0, got {EntropyCoef}.")
        .Check(Temperature >= 0 && !double.IsInfinity(Temperature), $"temperature must be >= 0, got {Temperature}.")
        .Check(TopK >= 0, $"top_k must be >= 0, got {TopK}.")
        .Check(TopP is > 0 and <= 1, $"top_p must be in (0, 1], got {TopP}.")
        .Check(RewardWeights is null || RewardWeights.All(double.IsFinite), $"reward_weights must be finite numbers, got [{string.Join(", ", RewardWeights ?? [])}].")
        .Check(MissingEosPenalty is not { } penalty || double.IsFinite(penalty), $"missing_eos_penalty must be finite, got {MissingEosPenalty}.")
        .ThrowIfAny();
}
