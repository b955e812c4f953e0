using System.Diagnostics.CodeAnalysis;
using Alignment.Data;
using Alignment.Distributed;
using Alignment.Models;
using Alignment.Scoring;
using Alignment.Tokenization;
using Alignment.Training;
using Microsoft.Extensions.Logging;
using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Rl;

/// <summary>
/// On-policy RL against a reward, on the training engine every trainer uses: each step samples a rollout with the
/// KV-cached generator, scores it with reward functions (<see cref="IRewardFunction"/>: TRL's <c>reward_funcs</c>,
/// weighted by <see cref="PpoOptions.RewardWeights"/>) or an <see cref="IRewardModel"/>, computes advantages (PPO: KL-penalised rewards
/// and GAE over a value head; GRPO: group-normalised scores; RLOO: leave-one-out baselines), then takes
/// <c>num_ppo_epochs</c> × <c>num_mini_batches</c> clipped-surrogate passes, one optimizer update per
/// <c>gradient_accumulation_steps</c> minibatches.
/// </summary>
public sealed partial class PpoLoop
{
    readonly PolicyModel _policy;
    readonly PpoOptions _options;
    readonly ICausalLM? _reference;
    readonly ScalarHead? _valueHead;
    readonly RolloutCollector _rollouts;
    readonly ILogger? _logger;
    readonly IReadOnlyList<ITrainingCallback> _callbacks;
    AdaptiveKlController? _controller;

    /// <summary>Creates the loop against one reward model, judge or rule (logged as <c>rewards/&lt;its type&gt;/mean</c>).</summary>
    /// <param name="policy">The model to train.</param>
    /// <param name="reference">The frozen reference (for LoRA, <see cref="PolicyModel.CreateReference"/> shares the base); null when
    /// <c>kl_coef</c> is 0 and not adaptive (TRL's GRPO default β = 0): then no reference forward runs and the KL reads 0.</param>
    /// <param name="reward">The reward source.</param>
    /// <param name="tokenizer">The policy's tokenizer.</param>
    /// <param name="template">Chat template for the prompts (as user turns), or null to use prompts as raw text.</param>
    /// <param name="options">Settings.</param>
    /// <param name="valueHead">PPO's value head on the policy's hidden states; created when null (PPO only).</param>
    /// <param name="logger">Where steps and checkpoints are logged; nowhere when null.</param>
    /// <param name="callbacks">Receivers of every iteration's metrics, beyond metrics.jsonl and TensorBoard.</param>
    /// <exception cref="ArgumentException">An option is out of range (every one is named), or there is no reference and the KL term needs one.</exception>
    [SuppressMessage("ApiDesign", "RS0026", Justification = "The overloads differ in the type of their first differing parameter (reward model or reward functions; strings or prompt examples), so no call is ambiguous.")]
    public PpoLoop(PolicyModel policy, ICausalLM? reference, IRewardModel reward, ModelTokenizer tokenizer, IChatTemplate? template,
        PpoOptions options, ScalarHead? valueHead = null, ILogger? logger = null, IEnumerable<ITrainingCallback>? callbacks = null)
        : this(policy, reference, [RewardFunction.From(NameOf(reward ?? throw new ArgumentNullException(nameof(reward))), reward)], tokenizer, template, options, valueHead, logger, callbacks) { }

    /// <summary>Creates the loop against reward functions (TRL's <c>reward_funcs</c>), summed with <see cref="PpoOptions.RewardWeights"/>.</summary>
    /// <param name="policy">The model to train.</param>
    /// <param name="reference">The frozen reference (for LoRA, <see cref="PolicyModel.CreateReference"/> shares the base); null when
    /// <c>kl_coef</c> is 0 and not adaptive (TRL's GRPO default β = 0): then no reference forward runs and the KL reads 0.</param>
    /// <param name="rewards">The reward functions; each sample's reward is the weighted sum of those that did not abstain, and a
    /// sample on which all abstain is left out of the baselines with advantage 0 (PPO: out of the loss).</param>
    /// <param name="tokenizer">The policy's tokenizer.</param>
    /// <param name="template">Chat template for the prompts (as user turns), or null to use prompts as raw text.</param>
    /// <param name="options">Settings.</param>
    /// <param name="valueHead">PPO's value head on the policy's hidden states; created when null (PPO only).</param>
    /// <param name="logger">Where steps and checkpoints are logged; nowhere when null.</param>
    /// <param name="callbacks">Receivers of every iteration's metrics, beyond metrics.jsonl and TensorBoard.</param>
    /// <exception cref="ArgumentException">An option is out of range (every one is named), there are no reward functions, two share a
    /// name, the weights do not match them in number, or there is no reference and the KL term needs one.</exception>
    [SuppressMessage("ApiDesign", "RS0026", Justification = "The overloads differ in the type of their first differing parameter (reward model or reward functions; strings or prompt examples), so no call is ambiguous.")]
    public PpoLoop(PolicyModel policy, ICausalLM? reference, IReadOnlyList<IRewardFunction> rewards, ModelTokenizer tokenizer, IChatTemplate? template,
        PpoOptions options, ScalarHead? valueHead = null, ILogger? logger = null, IEnumerable<ITrainingCallback>? callbacks = null)
    {
        _policy = policy ?? throw new ArgumentNullException(nameof(policy));
        ArgumentNullException.ThrowIfNull(rewards);
        ArgumentNullException.ThrowIfNull(tokenizer);
        tokenizer.EnsureFits(policy.Model.Config.VocabSize);
        _options = options ?? throw new ArgumentNullException(nameof(options));
        options.Validate();
        if (rewards.Count == 0 || rewards.Any(r => r is null))
            throw new ArgumentException("Give at least one reward function, and no null ones.", nameof(rewards));
        if (rewards.GroupBy(r => r.Name).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new ArgumentException($"Two reward functions are named '{twice.Key}'; their metrics would collide.", nameof(rewards));
        if (options.RewardWeights is { } weights && weights.Count != rewards.Count)
            throw new ArgumentException($"reward_weights has {weights.Count} values for {rewards.Count} reward functions ({string.Join(", ", rewards.Select(r => r.Name))}).", nameof(options));
        if (reference is null && (options.KlCoef != 0 || options.KlTarget is not null))
            throw new ArgumentException($"kl_coef {options.KlCoef}{(options.KlTarget is null ? "" : " (adaptive)")} needs a reference model for its KL term; pass one, or set kl_coef to 0.", nameof(reference));
        _valueHead = options.Algorithm == RlAlgorithm.Ppo
            ? valueHead ?? new ScalarHead(policy.Model.Config.HiddenSize, hasBias: true, dtype: policy.Model.DType, device: policy.Model.Device,
                generator: new Generator((ulong)options.Training.Seed))
            : null;
        _reference = reference;
        _rollouts = new RolloutCollector(policy, reference, [.. rewards], options.RewardWeights?.ToArray() ?? [.. rewards.Select(_ => 1.0)], tokenizer, template, options, _valueHead);
        _logger = logger;
        _callbacks = callbacks?.ToList() ?? [];
        KlCoef = options.KlCoef;
    }

    /// <summary>The metric name of a reward model given alone: its type's name in snake case (<c>reward_model</c>, <c>delegate_reward</c> …).</summary>
    internal static string NameOf(IRewardModel reward) =>
        string.Concat(reward.GetType().Name.Select((c, i) => char.IsUpper(c) ? (i > 0 ? "_" : "") + char.ToLowerInvariant(c) : c.ToString()));

    /// <summary>The current KL coefficient (changes when adaptive).</summary>
    public double KlCoef { get; private set; }

    /// <summary>
    /// Trains; the arguments are those of every trainer's <c>Train</c>. Each step draws
    /// <c>per_device_train_batch_size</c> prompts from the shuffled stream (GRPO and RLOO sample each
    /// <c>num_generations</c> times). With <paramref name="resume"/>, continues from the newest checkpoint in the output
    /// folder (policy weights, value head, optimizer, KL coefficient): a resumed run matches an uninterrupted one.
    /// </summary>
    /// <param name="prompts">Training prompts.</param>
    /// <param name="eval">Evaluation prompts: each sampled once (with a fixed seed) and scored; reports <c>objective/scores</c>, <c>objective/kl</c> and <c>val/num_eos_tokens</c>.</param>
    /// <param name="resume">Continue from the newest checkpoint if there is one.</param>
    /// <param name="cancellationToken">Stops after the current iteration, writing a checkpoint.</param>
    [SuppressMessage("ApiDesign", "RS0026", Justification = "The overloads differ in the type of their first differing parameter (reward model or reward functions; strings or prompt examples), so no call is ambiguous.")]
    public TrainingResult Train(IReadOnlyList<string> prompts, IReadOnlyList<string>? eval = null, bool resume = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        return Train(prompts.Select(p => new PromptExample(p)).ToList(), eval?.Select(p => new PromptExample(p)).ToList(), resume, cancellationToken);
    }

    /// <summary>
    /// Trains on prompts that carry dataset columns for the reward functions (e.g. <c>solution</c>); otherwise as
    /// <see cref="Train(IReadOnlyList{string}, IReadOnlyList{string}?, bool, CancellationToken)"/>.
    /// </summary>
    /// <param name="prompts">Training prompts with their columns.</param>
    /// <param name="eval">Evaluation prompts with their columns.</param>
    /// <param name="resume">Continue from the newest checkpoint if there is one.</param>
    /// <param name="cancellationToken">Stops after the current iteration, writing a checkpoint.</param>
    [SuppressMessage("ApiDesign", "RS0026", Justification = "The overloads differ in the type of their first differing parameter (reward model or reward functions; strings or prompt examples), so no call is ambiguous.")]
    public TrainingResult Train(IReadOnlyList<PromptExample> prompts, IReadOnlyList<PromptExample>? eval = null, bool resume = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        if (prompts.Count == 0)
            throw new ArgumentException("No prompts.", nameof(prompts));
        _policy.Model.train();
        KlCoef = _options.KlCoef;
        _controller = _options.KlTarget is { } target ? new AdaptiveKlController(KlCoef, target, _options.KlHorizon) : null;
        var trainable = TrainingTask.TrainableOf(_policy.Model);
        if (_valueHead is not null)
            trainable.AddRange(TrainingTask.TrainableOf(_valueHead, "value_head."));
        var task = new TrainingTask<PromptExample>(trainable, Step)
        {
            ExamplesPerStep = _options.Training.BatchSize,
            Config = new Dictionary<string, string>
            {
                ["algorithm"] = _options.Algorithm.ToString(), ["num_generations"] = $"{_options.NumGenerations}", ["kl_coef"] = FormattableString.Invariant($"{_options.KlCoef}"),
                ["num_ppo_epochs"] = $"{_options.PpoEpochs}", ["num_mini_batches"] = $"{_options.MiniBatches}", ["response_length"] = $"{_options.ResponseLength}",
                ["train_data"] = DataFingerprint.Of(prompts),
            },
            Evaluate = eval is null ? null : () => Evaluate(eval),
            SaveState = state =>
            {
                state["kl_coef"] = KlCoef;
                state["algorithm"] = _options.Algorithm.ToString();
            },
            RestoreState = state =>
            {
                KlCoef = state["kl_coef"]!.GetValue<double>();
                if (_options.KlTarget is { } klTarget)
                    _controller = new AdaptiveKlController(KlCoef, klTarget, _options.KlHorizon);
            },
        };
        using var settings = RunSettings.Apply(_options.Training, _policy.Model, _reference);
        return new TrainingLoop<PromptExample>(prompts, task, _options.Training, _logger, _callbacks).Run(resume, cancellationToken);
    }

    int Group => _options.Algorithm == RlAlgorithm.Ppo ? 1 : _options.NumGenerations;

    /// <summary>
    /// One iteration on this process's share of the step's prompts (all of them with one process): its rollout, then
    /// <c>num_ppo_epochs</c> passes over minibatches drawn from the global rollout, of which this process trains the rows
    /// it holds. Each minibatch's loss is a mean over its completion tokens on every process; rollouts draw one
    /// generator per sample, seeded by its place in the global batch, so the run does not depend on the number of processes.
    /// </summary>
    IReadOnlyDictionary<string, double> Step(IReadOnlyList<PromptExample> stepPrompts, StepContext context)
    {
        using var scope = NewDisposeScope();
        IProcessGroup processes = context.Group;
        int perProcess = _options.Training.BatchSize;
        var samples = stepPrompts.Skip(processes.Rank * perProcess).Take(perProcess).SelectMany(p => Enumerable.Repeat(p, Group)).ToList();
        int rows = samples.Count, firstRow = processes.Rank * rows, globalRows = rows * processes.WorldSize;
        using Rollout rollout = _rollouts.Collect(samples, RowSeeds(_options.Training.Seed * 7919L + context.Step, firstRow, rows));
        Tensor kl = RlMath.Kl(rollout.OldLogProbs, rollout.ReferenceLogProbs, _options.KlEstimator).mul(rollout.Mask); // [B, T]
        Tensor klPerSequence = kl.sum(1);
        Tensor nonScore = klPerSequence.mul(-KlCoef);
        var (advantages, returns) = Advantages(rollout, kl, nonScore, processes);
        Tensor lossMask = _options.MaskTruncatedCompletions ? rollout.Mask.logical_and(EndedWithEos(rollout).unsqueeze(1)) : rollout.Mask;
        if (_options.Algorithm == RlAlgorithm.Ppo && rollout.Scores.Any(double.IsNaN)) // GRPO and RLOO give unscorable samples advantage 0, as TRL
            lossMask = lossMask.logical_and(tensor(rollout.Scores.Select(double.IsFinite).ToArray(), device: lossMask.device).unsqueeze(1));

        // num_ppo_epochs passes over shuffled minibatches of the global rollout; one optimizer update per gradient_accumulation_steps minibatches.
        int perMini = (int)Math.Ceiling((double)globalRows / _options.MiniBatches);
        var random = new Random(unchecked(_options.Training.Seed + context.Step * 31));
        var minibatches = new List<MicroBatch>();
        for (int epoch = 0; epoch < _options.PpoEpochs; epoch++)
        {
            var shuffled = Enumerable.Range(0, globalRows).OrderBy(_ => random.Next()).ToArray();
            for (int start = 0; start < globalRows; start += perMini)
            {
                long[] index = shuffled.Skip(start).Take(perMini).Where(i => i >= firstRow && i < firstRow + rows).Select(i => (long)(i - firstRow)).ToArray();
                minibatches.Add(new MicroBatch(() => Update(rollout, lossMask, advantages, returns, index), () => $"rollout of step {context.Step + 1}"));
            }
        }
        foreach (MicroBatch[] update in minibatches.Chunk(_options.Training.GradientAccumulationSteps))
            context.Apply(update);

        var scored = rollout.Scores.Where(double.IsFinite).ToList();
        double[] totals = processes.AllReduceSum(scored.Sum(), scored.Count, Item(klPerSequence.sum()), Item(nonScore.sum()),
            Item(rollout.OldLogProbs.neg().mul(rollout.Mask).sum()), rollout.Completions.Count(c => c.Reason == FinishReason.EndOfSequence));
        var metrics = new Dictionary<string, double>
        {
            ["objective/scores"] = totals[0] / Math.Max(1, totals[1]),
            ["objective/kl"] = totals[2] / globalRows,
            ["objective/non_score_reward"] = totals[3] / globalRows,
            ["objective/entropy"] = totals[4] / globalRows,
            ["val/num_eos_tokens"] = totals[5],
        };
        metrics["objective/rlhf_reward"] = metrics["objective/scores"] + metrics["objective/non_score_reward"];
        if (_controller is not null)
        {
            _controller.Update(metrics["objective/kl"], globalRows);
            KlCoef = _controller.Value;
        }
        metrics["kl_coef"] = KlCoef;
        RewardMetrics.AddRewardMetrics(rollout.Rewards, processes, metrics);
        if (_options.Algorithm != RlAlgorithm.Ppo)
            RewardMetrics.AddGroupMetrics(rollout, Group, processes, metrics);
        return metrics;
    }

    /// <summary>[B] whether each completion of the rollout ended with an EOS token.</summary>
    static Tensor EndedWithEos(Rollout rollout) =>
        tensor(rollout.Completions.Select(c => c.Reason == FinishReason.EndOfSequence).ToArray(), device: rollout.Mask.device);

    /// <summary>The sampling seed of each of <paramref name="count"/> rollout rows from global row <paramref name="firstRow"/>.</summary>
    static long[] RowSeeds(long seed, int firstRow, int count) =>
        [.. Enumerable.Range(firstRow, count).Select(row => unchecked(seed * 1_000_003L + row))];

    /// <summary>Samples each evaluation prompt once with a fixed seed and reports the mean score and KL.</summary>
    IReadOnlyDictionary<string, double> Evaluate(IReadOnlyList<PromptExample> prompts)
    {
        using var scope = NewDisposeScope();
        using Rollout rollout = _rollouts.Collect(prompts, RowSeeds(_options.Training.Seed * 7919L - 1, 0, prompts.Count));
        Tensor kl = RlMath.Kl(rollout.OldLogProbs, rollout.ReferenceLogProbs, _options.KlEstimator).mul(rollout.Mask);
        var metrics = new Dictionary<string, double>
        {
            ["objective/kl"] = Item(kl.sum(1).mean()),
            ["val/num_eos_tokens"] = rollout.Completions.Count(c => c.Reason == FinishReason.EndOfSequence),
        };
        if (rollout.Scores.Any(double.IsFinite)) // left out when every sample was unscorable
            metrics["objective/scores"] = rollout.Scores.Where(double.IsFinite).Average();
        return metrics;
    }

    static double Item(Tensor value) => value.to_type(ScalarType.Float64).item<double>();
}
