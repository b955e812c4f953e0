namespace Alignment.Cli.Commands;

/// <summary><c>align reward</c>: a Bradley–Terry reward model from preference pairs.</summary>
internal static class RewardCommand
{
    public static Command Create(CliContext context)
    {
        var (model, data, training) =
            (new ModelArguments(lora: false), new DataArguments("Preference pairs (JSONL), any of the paired formats."), new TrainingArguments(RewardTrainer.DefaultOptions));
        var center = CliOption.Double("center-rewards-coefficient", "Weight of mean((r_chosen + r_rejected)²), which keeps rewards centred on 0; 0 = off.", 0);
        var command = CliCommand.New("reward", "Reward modelling (Bradley–Terry) from preference pairs; saves a sequence-classification folder.", model, data, training, center);
        command.SetAction(parse =>
        {
            TrainingOptions options = training.Read(parse);
            double coefficient = parse.GetValue(center)!.Value;
            if (!(coefficient >= 0))
                throw new ArgumentException($"--center-rewards-coefficient must be >= 0, got {coefficient}.");
            DataSource source = data.Open(parse, model.Tokenizer(parse));
            var (train, eval) = source.Pairs();
            context.Report(source);
            using RewardModel reward = RewardModel.FromCausalLM(model.Folder(parse), model.LoadOptions(parse), options.Seed);
            TrainingResult result = new RewardTrainer(reward, options with { PaddingValue = source.PaddingValue }, coefficient, logger: context.Logger, callbacks: context.Callbacks)
                .Train(train, eval, parse.GetValue(training.Resume), context.Cancel);
            if (context.WritesFiles)
                reward.SavePretrained(options.OutputDir!);
            return context.Summary(result, options.OutputDir!, "pairs", source.TrainReport, source.EvalReport);
        });
        return command;
    }
}
