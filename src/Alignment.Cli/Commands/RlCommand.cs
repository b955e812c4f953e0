using System.Globalization;
using Alignment.Rl;
using Alignment.Scoring;

namespace Alignment.Cli.Commands;

/// <summary><c>align ppo</c>, <c>align grpo</c>, <c>align rloo</c>: on-policy RL against a reward-model folder.</summary>
internal static class RlCommand
{
    public static Command Create(CliContext context, RlAlgorithm algorithm)
    {
        var (model, data, training, rl, rewards) =
            (new ModelArguments(), new DataArguments("Prompts (JSONL): {prompt} as text or messages; other fields (e.g. solution) reach the reward functions.", lengths: false),
             new TrainingArguments(PpoOptions.DefaultTraining, "rollout-and-update iterations", "distinct prompts per iteration"), new RlArguments(algorithm), new RewardArguments());
        var reference = CliOption.Text("reference", "Reference model folder; the starting model when not given.", null, "ref_model", "ref-model");
        var command = CliCommand.New(algorithm.ToString().ToLowerInvariant(), algorithm switch
        {
            RlAlgorithm.Ppo => "PPO against a reward model and/or reward functions: value head, KL-penalised rewards, GAE.",
            RlAlgorithm.Grpo => "GRPO against a reward model and/or reward functions: group-normalised rewards, no value model.",
            _ => "RLOO against a reward model and/or reward functions: leave-one-out baselines, no value model.",
        }, model, data, training, rl, rewards, reference);
        command.SetAction(parse =>
        {
            PpoOptions options = rl.Read(parse, algorithm, training.Read(parse, validate: false)); // bad values fail before anything loads
            List<IRewardFunction> functions = rewards.Functions(parse, options.ResponseLength);
            string? rewardFolder = parse.GetValue(rl.RewardModel);
            if (rewardFolder is null && functions.Count == 0)
                throw new ArgumentException("Give a reward: --reward-model FOLDER, --reward-funcs NAMES, or both.");
            string? rewardName = rewardFolder is null ? null : string.Join('_', Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(rewardFolder))).Split(' ', StringSplitOptions.RemoveEmptyEntries));
            options = options with { RewardWeights = rewards.Weights(parse, [.. (rewardName is null ? [] : new[] { rewardName }), .. functions.Select(f => f.Name)]) };
            LoraOptions? lora = model.Lora(parse);
            var prompts = PreferenceFormats.ReadPromptExamples(data.TrainFile(parse), data.ReadOptions(parse)).ToList();
            var evalPrompts = data.EvalFile(parse) is { } evalFile ? PreferenceFormats.ReadPromptExamples(evalFile, data.ReadOptions(parse)).ToList() : null;
            var (tokenizer, template) = model.Tokenizer(parse);
            options = options with { Training = options.Training with { PaddingValue = tokenizer.PadTokenId ?? 0 } };
            using PolicyModel policy = model.LoadPolicy(parse, lora);
            // β = 0 (GRPO's default) has no KL term: no reference is loaded or run.
            using ReferenceModel? referenceModel = options.KlCoef == 0 && options.KlTarget is null ? null
                : parse.GetValue(reference) is { } folder ? ReferenceModel.Own(LlamaForCausalLM.FromPretrained(folder, model.LoadOptions(parse)))
                : policy.CreateReference();
            using RewardModel? reward = rewardFolder is null ? null : RewardModel.FromPretrained(rewardFolder, model.LoadOptions(parse));
            if (reward is not null)
                functions.Insert(0, RewardFunction.From(rewardName!, reward));
            var loop = new PpoLoop(policy, referenceModel, functions, tokenizer, template, options, logger: context.Logger, callbacks: context.Callbacks);
            TrainingResult result = loop.Train(prompts, evalPrompts, parse.GetValue(training.Resume), context.Cancel);
            string output = options.Training.OutputDir!;
            if (context.WritesFiles)
                policy.Model.SavePretrained(output);
            context.Output.WriteLine();
            var steps = result.History.Where(h => h.ContainsKey("objective/scores") && !h.ContainsKey("eval_objective/scores")).ToList();
            if (steps.Count > 0)
                context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{prompts.Count} prompts; {result.Steps}/{result.TotalSteps} iterations; objective/scores {steps[0]["objective/scores"]:F4} → {steps[^1]["objective/scores"]:F4}, objective/kl {steps[^1]["objective/kl"]:F4}; model saved to {output}."));
            return 0;
        });
        return command;
    }
}
