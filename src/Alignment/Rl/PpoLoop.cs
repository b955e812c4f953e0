using System.Text.Json.Nodes;
using Alignment.Data;
using Alignment.Kernels;
using Alignment.Models;
using Alignment.Tokenization;
using Alignment.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Alignment.Rl;

/// <summary>Scores completions: a trained reward model, a rule, or a judge.</summary>
public interface IRewardModel
{
    /// <summary>One score per (prompt, completion).</summary>
    IReadOnlyList<double> Score(IReadOnlyList<string> prompts, IReadOnlyList<string> completions);
}

/// <summary>A programmatic reward from a delegate (prompt, completion → score).</summary>
public sealed class DelegateReward(Func<string, string, double> score) : IRewardModel
{
    /// <inheritdoc />
    public IReadOnlyList<double> Score(IReadOnlyList<string> prompts, IReadOnlyList<string> completions) =>
        prompts.Select((p, i) => score(p, completions[i])).ToList();
}

/// <summary>A <see cref="RewardModel"/> as the reward: the prompt as a user turn and the completion as the assistant turn.</summary>
public sealed class RewardModelScorer(RewardModel model, ModelTokenizer tokenizer, IChatTemplate? template) : IRewardModel
{
    /// <inheritdoc />
    public IReadOnlyList<double> Score(IReadOnlyList<string> prompts, IReadOnlyList<string> completions)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var scores = new List<double>();
        for (int i = 0; i < prompts.Count; i++)
        {
            int[] ids = template is null ? [.. tokenizer.EncodeContent(prompts[i]), .. tokenizer.EncodeContent(completions[i])]
                : tokenizer.Encode(template.Render([new("user", prompts[i]), new("assistant", completions[i])], false)).ToArray();
            Tensor input = tensor(ids.Select(x => (long)x).ToArray(), device: model.Backbone.Device).unsqueeze(0);
            scores.Add(model.Score(input, ones_like(input)).to_type(ScalarType.Float64).item<double>());
        }
        return scores;
    }
}

/// <summary>
/// An LLM judge as the reward, through <see cref="Microsoft.Extensions.AI.IChatClient"/>: it asks for a 0–10 rating of each
/// completion and uses the first number in the answer (0 when there is none), scaled to [0, 1].
/// </summary>
public sealed partial class JudgeReward(Microsoft.Extensions.AI.IChatClient client, Microsoft.Extensions.AI.ChatOptions? options = null) : IRewardModel
{
    /// <summary>The instruction; {prompt} and {completion} are replaced.</summary>
    public string Instruction { get; init; } =
        "Rate how good this response is, from 0 (useless or harmful) to 10 (excellent).\n\nPrompt:\n{prompt}\n\nResponse:\n{completion}\n\nAnswer with the number only.";

    /// <inheritdoc />
    public IReadOnlyList<double> Score(IReadOnlyList<string> prompts, IReadOnlyList<string> completions) =>
        prompts.Select((prompt, i) =>
        {
            string text = Instruction.Replace("{prompt}", prompt, StringComparison.Ordinal).Replace("{completion}", completions[i], StringComparison.Ordinal);
            var response = client.GetResponseAsync([new Microsoft.Extensions.AI.ChatMessage(Microsoft.Extensions.AI.ChatRole.User, text)], options)
                .GetAwaiter().GetResult();
            var match = Number().Match(response.Text ?? "");
            return match.Success ? Math.Clamp(double.Parse(match.Value, System.Globalization.CultureInfo.InvariantCulture), 0, 10) / 10 : 0;
        }).ToList();

    [System.Text.RegularExpressions.GeneratedRegex(@"\d+(\.\d+)?")]
    private static partial System.Text.RegularExpressions.Regex Number();
}

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

/// <summary>Settings of <see cref="PpoLoop"/>, named as in TRL's PPO/GRPO/RLOO configs.</summary>
public sealed record PpoOptions
{
    /// <summary>The algorithm.</summary>
    public RlAlgorithm Algorithm { get; init; } = RlAlgorithm.Ppo;
    /// <summary>Rollout-and-update iterations.</summary>
    public int Iterations { get; init; } = 50;
    /// <summary>Distinct prompts per iteration.</summary>
    public int PromptsPerIteration { get; init; } = 8;
    /// <summary><c>num_generations</c> (GRPO) / <c>rloo_k</c> (RLOO): samples per prompt; PPO samples one.</summary>
    public int NumGenerations { get; init; } = 4;
    /// <summary><c>num_ppo_epochs</c>.</summary>
    public int PpoEpochs { get; init; } = 4;
    /// <summary><c>num_mini_batches</c> per epoch.</summary>
    public int MiniBatches { get; init; } = 1;
    /// <summary><c>learning_rate</c> (constant).</summary>
    public double LearningRate { get; init; } = 3e-6;
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
    /// <summary><c>gradient_accumulation_steps</c>: minibatches whose gradients are summed before each optimizer step.</summary>
    public int GradientAccumulationSteps { get; init; } = 1;
    /// <summary>Also write every metric as TensorBoard scalars into this folder; null = off.</summary>
    public string? TensorBoardDir { get; init; }
    /// <summary><c>missing_eos_penalty</c>: subtracted from the score of completions that end without EOS; null = off.</summary>
    public double? MissingEosPenalty { get; init; }
    /// <summary><c>max_grad_norm</c>.</summary>
    public double MaxGradNorm { get; init; } = 1.0;
    /// <summary><c>seed</c>.</summary>
    public int Seed { get; init; } = 42;
    /// <summary>metrics.jsonl goes here; null = not written.</summary>
    public string? OutputDir { get; init; }
    /// <summary>Receives each iteration's metrics.</summary>
    public IProgress<TrainingProgress>? Progress { get; init; }
    /// <summary>Write a checkpoint every N iterations (and at the end) into <see cref="OutputDir"/>; null = only at the end.</summary>
    public int? SaveSteps { get; init; }
    /// <summary>Where each iteration is logged.</summary>
    public Microsoft.Extensions.Logging.ILogger Logger { get; init; } = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    /// <summary>Checks the values.</summary>
    /// <exception cref="ArgumentException">A value is out of range; the message names it.</exception>
    public void Validate()
    {
        if (Iterations < 1 || PromptsPerIteration < 1 || PpoEpochs < 1 || MiniBatches < 1 || ResponseLength < 1 || GradientAccumulationSteps < 1)
            throw new ArgumentException("iterations, prompts per iteration, num_ppo_epochs, num_mini_batches, response_length and gradient_accumulation_steps must be >= 1.");
        if (Algorithm != RlAlgorithm.Ppo && NumGenerations < 2)
            throw new ArgumentException($"num_generations must be >= 2 for {Algorithm}, got {NumGenerations}.", nameof(NumGenerations));
        if (!(LearningRate > 0) || !(KlCoef >= 0) || !(ClipRange > 0) || !(ClipRangeValue > 0) || !(Gamma is > 0 and <= 1) || !(Lambda is >= 0 and <= 1))
            throw new ArgumentException("learning_rate, kl_coef, cliprange, cliprange_value, gamma and lam must be in range.");
        if (KlTarget is <= 0)
            throw new ArgumentException($"the target KL must be > 0, got {KlTarget}.", nameof(KlTarget));
    }
}

/// <summary>
/// On-policy RL against a reward: rollouts with the KV-cached generator, scores from an <see cref="IRewardModel"/>,
/// log-probabilities through <see cref="TokenLogProbs.FromHidden"/>, then PPO, GRPO or RLOO updates.
/// </summary>
public sealed partial class PpoLoop
{
    readonly PolicyModel _policy;
    readonly ICausalLM _reference;
    readonly IRewardModel _reward;
    readonly ModelTokenizer _tokenizer;
    readonly IChatTemplate? _template;
    readonly PpoOptions _options;
    readonly ScalarHead? _valueHead;

    /// <summary>Creates the loop.</summary>
    /// <param name="policy">The model to train.</param>
    /// <param name="reference">The frozen reference (for LoRA, <see cref="PolicyModel.CreateReference"/> shares the base).</param>
    /// <param name="reward">The reward source.</param>
    /// <param name="tokenizer">The policy's tokenizer.</param>
    /// <param name="template">Chat template for the prompts (as user turns), or null to use prompts as raw text.</param>
    /// <param name="options">Settings.</param>
    /// <param name="valueHead">PPO's value head on the policy's hidden states; created when null (PPO only).</param>
    public PpoLoop(PolicyModel policy, ICausalLM reference, IRewardModel reward, ModelTokenizer tokenizer, IChatTemplate? template,
        PpoOptions options, ScalarHead? valueHead = null)
    {
        _policy = policy ?? throw new ArgumentNullException(nameof(policy));
        _reference = reference ?? throw new ArgumentNullException(nameof(reference));
        _reward = reward ?? throw new ArgumentNullException(nameof(reward));
        _tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        _template = template;
        _options = options ?? throw new ArgumentNullException(nameof(options));
        options.Validate();
        _valueHead = options.Algorithm == RlAlgorithm.Ppo
            ? valueHead ?? new ScalarHead(policy.Model.Config.HiddenSize, hasBias: true, dtype: policy.Model.DType, device: policy.Model.Device,
                generator: new Generator((ulong)options.Seed))
            : null;
    }

    /// <summary>The current KL coefficient (changes when adaptive).</summary>
    public double KlCoef { get; private set; }

    /// <summary>
    /// Runs every iteration; returns the metrics of each, with TRL's names. With <paramref name="resume"/>, continues from
    /// the newest checkpoint in <see cref="PpoOptions.OutputDir"/> (policy weights, value head, optimizer, KL coefficient):
    /// rollouts and updates are seeded per iteration, so a resumed run matches an uninterrupted one.
    /// </summary>
    public IReadOnlyList<IReadOnlyDictionary<string, double>> Train(IReadOnlyList<string> prompts, CancellationToken cancellationToken = default, bool resume = false)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        if (prompts.Count == 0)
            throw new ArgumentException("No prompts.", nameof(prompts));
        var parameters = _policy.TrainableParameters.Concat(_valueHead?.parameters() ?? []).ToList();
        using var optimizer = optim.AdamW(parameters, lr: _options.LearningRate);
        var controller = _options.KlTarget is { } target ? new AdaptiveKlController(_options.KlCoef, target, _options.KlHorizon) : null;
        KlCoef = _options.KlCoef;
        var order = DataSplit.Shuffle(Enumerable.Range(0, prompts.Count), _options.Seed);
        var history = new List<IReadOnlyDictionary<string, double>>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var named = NamedParameters();
        SummaryWriter? tensorBoard = _options.TensorBoardDir is { } board ? torch.utils.tensorboard.SummaryWriter(board) : null;
        int startIteration = 0;
        if (resume && _options.OutputDir is not null && CheckpointFiles.Latest(_options.OutputDir) is { } checkpoint)
        {
            JsonObject state = CheckpointFiles.Restore(checkpoint, named, optimizer);
            startIteration = state["global_step"]!.GetValue<int>();
            double coefficient = state["kl_coef"]!.GetValue<double>();
            KlCoef = coefficient;
            if (_options.KlTarget is { } klTarget)
                controller = new AdaptiveKlController(coefficient, klTarget, _options.KlHorizon);
            CheckpointFiles.TruncateMetrics(_options.OutputDir, startIteration);
        }
        int iteration;
        for (iteration = startIteration; iteration < _options.Iterations && !cancellationToken.IsCancellationRequested; iteration++)
        {
            torch.manual_seed(_options.Seed * 1_000_003L + iteration);
            int group = _options.Algorithm == RlAlgorithm.Ppo ? 1 : _options.NumGenerations;
            var batchPrompts = Enumerable.Range(0, _options.PromptsPerIteration).Select(i => prompts[order[(iteration * _options.PromptsPerIteration + i) % prompts.Count]])
                .SelectMany(p => Enumerable.Repeat(p, group)).ToList();
            Dictionary<string, double> metrics = Iteration(batchPrompts, group, iteration, parameters, optimizer);
            if (controller is not null)
            {
                controller.Update(metrics["objective/kl"], batchPrompts.Count);
                KlCoef = controller.Value;
            }
            metrics["kl_coef"] = KlCoef;
            metrics["step"] = iteration + 1;
            history.Add(metrics);
            foreach (var (key, value) in metrics)
                if (key != "step" && double.IsFinite(value))
                    tensorBoard?.add_scalar(key, (float)value, iteration + 1);
            if (_options.OutputDir is not null)
                CheckpointFiles.AppendMetrics(_options.OutputDir, metrics);
            _options.Progress?.Report(new TrainingProgress(iteration + 1, _options.Iterations, metrics, clock.Elapsed));
            LogIteration(_options.Logger, iteration + 1, _options.Iterations, metrics["objective/scores"], metrics["objective/kl"]);
            if (_options.OutputDir is not null && (iteration + 1 == _options.Iterations || _options.SaveSteps is { } every && (iteration + 1) % every == 0))
                Save(iteration + 1, named, optimizer);
        }
        if (_options.OutputDir is not null && cancellationToken.IsCancellationRequested && iteration > startIteration)
            Save(iteration, named, optimizer);
        return history;
    }

    List<(string Name, Parameter Parameter)> NamedParameters() =>
        _policy.Model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter))
            .Concat(_valueHead?.named_parameters().Select(p => ("value_head." + p.name, p.parameter)) ?? []).ToList();

    void Save(int iteration, List<(string Name, Parameter Parameter)> named, OptimizerHelper optimizer) =>
        CheckpointFiles.Save(_options.OutputDir!, iteration, named, optimizer,
            new JsonObject { ["kl_coef"] = KlCoef, ["algorithm"] = _options.Algorithm.ToString(), ["seed"] = _options.Seed });

    [Microsoft.Extensions.Logging.LoggerMessage(EventId = 7001, Level = Microsoft.Extensions.Logging.LogLevel.Information,
        Message = "iteration {Iteration}/{Total} objective/scores {Scores} objective/kl {Kl}")]
    static partial void LogIteration(Microsoft.Extensions.Logging.ILogger logger, int iteration, int total, double scores, double kl);

    Dictionary<string, double> Iteration(List<string> prompts, int group, int iteration, List<Parameter> parameters, OptimizerHelper optimizer)
    {
        // ---- Rollout: sample, score, and compute (no grad) old log-probs, reference log-probs and values.
        long[] eos = _tokenizer.EosTokenIds.Select(i => (long)i).ToArray();
        var promptIds = prompts.Select(p => (_template is null ? _tokenizer.EncodeContent(p) : _tokenizer.Encode(_template.Render([new("user", p)], true))).ToArray()).ToList();
        _policy.Model.eval();
        IReadOnlyList<Completion> completions = TextGenerator.Generate(_policy.Model, promptIds.Select(p => p.Select(i => (long)i).ToArray()).ToList(),
            new GenerationOptions
            {
                MaxNewTokens = _options.ResponseLength, Temperature = _options.Temperature, TopK = _options.TopK, TopP = _options.TopP,
                EosTokenIds = eos, Seed = _options.Seed * 7919L + iteration,
            });
        _policy.Model.train();
        var texts = completions.Select(c => _tokenizer.Decode(c.Tokens, skipSpecialTokens: true)).ToList();
        double[] scores = _reward.Score(prompts, texts).ToArray();
        if (_options.MissingEosPenalty is { } penalty)
            for (int i = 0; i < scores.Length; i++)
                if (completions[i].Reason != FinishReason.EndOfSequence)
                    scores[i] -= penalty;

        var rows = promptIds.Select((p, i) => new TokenizedCompletion(p, completions[i].Tokens.Select(t => (int)t).ToArray(), true, new SourceLocation("rollout", i + 1))).ToList();
        using CompletionBatch batch = CompletionCollator.Collate(rows, _tokenizer.PadTokenId ?? 0, device: _policy.Model.Device);
        Tensor mask = batch.Targets.ne(TokenLogProbs.IgnoreIndex).DetachFromDisposeScope();
        Tensor oldLogProbs, referenceLogProbs, oldValues;
        using (no_grad())
        using (NewDisposeScope())
        {
            Tensor hidden = _policy.Model.Forward(batch.InputIds, batch.AttentionMask);
            oldLogProbs = TokenLogProbs.FromHidden(hidden, _policy.Model.LmHeadWeight, batch.Targets).MoveToOuterDisposeScope();
            referenceLogProbs = TokenLogProbs.FromHidden(_reference.Forward(batch.InputIds, batch.AttentionMask), _reference.LmHeadWeight, batch.Targets).MoveToOuterDisposeScope();
            oldValues = _valueHead is null ? zeros_like(oldLogProbs).MoveToOuterDisposeScope() : _valueHead.PerToken(hidden).to_type(oldLogProbs.dtype).MoveToOuterDisposeScope();
        }
        using var rolloutScope = NewDisposeScope();
        Tensor scoreTensor = tensor(scores, device: oldLogProbs.device).to_type(oldLogProbs.dtype);
        Tensor kl = RlMath.Kl(oldLogProbs, referenceLogProbs, _options.KlEstimator).mul(mask);     // [B, T]
        Tensor klPerSequence = kl.sum(1);
        Tensor nonScore = klPerSequence.mul(-KlCoef);

        // ---- Advantages.
        Tensor advantages, returns;
        switch (_options.Algorithm)
        {
            case RlAlgorithm.Ppo:
                Tensor rewards = kl.mul(-KlCoef);
                Tensor last = ScalarHead.LastTokenIndex(mask);                                          // the last completion position
                rewards = rewards.scatter_add(1, last.unsqueeze(1), scoreTensor.unsqueeze(1));
                (advantages, returns) = RlMath.Gae(rewards, oldValues, mask, _options.Gamma, _options.Lambda);
                advantages = RlMath.Whiten(advantages, mask);
                break;
            case RlAlgorithm.Grpo:
                advantages = RlMath.GroupNormalized(scoreTensor, group).unsqueeze(1).mul(mask);
                returns = zeros_like(advantages);
                break;
            default:
                advantages = RlMath.LeaveOneOut(scoreTensor.add(nonScore), group).unsqueeze(1).mul(mask);
                returns = zeros_like(advantages);
                break;
        }

        // ---- Updates: num_ppo_epochs passes over shuffled minibatches.
        var sums = new Dictionary<string, double>();
        int updates = 0, accumulated = 0;
        using (NewDisposeScope())
            optimizer.zero_grad();
        int rowsCount = rows.Count, perMini = (int)Math.Ceiling((double)rowsCount / _options.MiniBatches);
        var random = new Random(unchecked(_options.Seed + iteration * 31));
        for (int epoch = 0; epoch < _options.PpoEpochs; epoch++)
        {
            var shuffled = Enumerable.Range(0, rowsCount).OrderBy(_ => random.Next()).ToArray();
            for (int start = 0; start < rowsCount; start += perMini)
            {
                using var scope = NewDisposeScope();
                Tensor index = tensor(shuffled.Skip(start).Take(perMini).Select(i => (long)i).ToArray(), device: mask.device);
                Tensor m = mask.index_select(0, index);
                Tensor hidden = _policy.Model.Forward(batch.InputIds.index_select(0, index), batch.AttentionMask.index_select(0, index));
                Tensor logProbs = TokenLogProbs.FromHidden(hidden, _policy.Model.LmHeadWeight, batch.Targets.index_select(0, index));
                var (policyLoss, clipFraction, approxKl, ratio) = RlMath.ClippedSurrogate(logProbs, oldLogProbs.index_select(0, index),
                    advantages.index_select(0, index), m, _options.ClipRange);
                Tensor loss = policyLoss;
                if (_valueHead is not null)
                {
                    Tensor values = _valueHead.PerToken(hidden).to_type(logProbs.dtype);
                    var (valueLoss, valueClip) = RlMath.ClippedValueLoss(values, oldValues.index_select(0, index), returns.index_select(0, index), m, _options.ClipRangeValue);
                    loss = loss.add(valueLoss.mul(_options.VfCoef));
                    Add(sums, "loss/value_avg", valueLoss);
                    Add(sums, "val/clipfrac_avg", valueClip);
                }
                if (_options.Algorithm == RlAlgorithm.Grpo && KlCoef > 0)
                    loss = loss.add(RlMath.MaskedMean(RlMath.Kl(logProbs, referenceLogProbs.index_select(0, index), KlEstimator.K3), m).mul(KlCoef));
                if (_options.EntropyCoef > 0)
                    loss = loss.sub(RlMath.MaskedMean(logProbs.neg(), m).mul(_options.EntropyCoef));
                loss.div(_options.GradientAccumulationSteps).backward();
                bool lastMinibatch = epoch == _options.PpoEpochs - 1 && start + perMini >= rowsCount;
                if (++accumulated == _options.GradientAccumulationSteps || lastMinibatch)
                {
                    using (NewDisposeScope())
                        nn.utils.clip_grad_norm_(parameters, _options.MaxGradNorm);
                    using (NewDisposeScope())
                    {
                        optimizer.step();
                        optimizer.zero_grad();
                    }
                    accumulated = 0;
                }
                Add(sums, "loss/policy_avg", policyLoss);
                Add(sums, "policy/clipfrac_avg", clipFraction);
                Add(sums, "policy/approxkl_avg", approxKl);
                Add(sums, "val/ratio", ratio);
                updates++;
            }
        }
        using (NewDisposeScope())
            optimizer.zero_grad();

        var metrics = sums.ToDictionary(kv => kv.Key, kv => kv.Value / updates);
        metrics["objective/scores"] = scores.Average();
        metrics["objective/kl"] = klPerSequence.mean().to_type(ScalarType.Float64).item<double>();
        metrics["objective/non_score_reward"] = nonScore.mean().to_type(ScalarType.Float64).item<double>();
        metrics["objective/rlhf_reward"] = metrics["objective/scores"] + metrics["objective/non_score_reward"];
        metrics["objective/entropy"] = oldLogProbs.neg().mul(mask).sum(1).mean().to_type(ScalarType.Float64).item<double>();
        metrics["val/num_eos_tokens"] = completions.Count(c => c.Reason == FinishReason.EndOfSequence);
        mask.Dispose();
        oldLogProbs.Dispose();
        referenceLogProbs.Dispose();
        oldValues.Dispose();
        return metrics;
    }

    static void Add(Dictionary<string, double> sums, string name, Tensor value) =>
        sums[name] = sums.GetValueOrDefault(name) + value.to_type(ScalarType.Float64).item<double>();
}
