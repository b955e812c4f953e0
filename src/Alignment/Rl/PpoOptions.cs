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
        .Check(ClipRangeValue > 0, $"cliprange_value must be > 0, got {ClipRangeValue}.")
        .Check(VfCoef >= 0 && !double.IsInfinity(VfCoef), $"vf_coef must be a finite number >= 0, got {VfCoef}.")
        .Check(Gamma is > 0 and <= 1, $"gamma must be in (0, 1], got {Gamma}.")
        .Check(Lambda is >= 0 and <= 1, $"lam must be in [0, 1], got {Lambda}.")
        .Check(EntropyCoef >= 0 && !double.IsInfinity(EntropyCoef), $"the entropy coefficient must be a finite number >= 0, got {EntropyCoef}.")
        .Check(Temperature >= 0 && !double.IsInfinity(Temperature), $"temperature must be >= 0, got {Temperature}.")
        .Check(TopK >= 0, $"top_k must be >= 0, got {TopK}.")
        .Check(TopP is > 0 and <= 1, $"top_p must be in (0, 1], got {TopP}.")
        .Check(MissingEosPenalty is not { } penalty || double.IsFinite(penalty), $"missing_eos_penalty must be finite, got {MissingEosPenalty}.")
        .ThrowIfAny();
}
