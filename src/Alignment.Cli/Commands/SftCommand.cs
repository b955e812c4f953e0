namespace Alignment.Cli.Commands;

/// <summary><c>align sft</c>: supervised fine-tuning on prompt/completion, messages or text JSONL.</summary>
internal static class SftCommand
{
    public static Command Create(CliContext context)
    {
        var (model, data, training) =
            (new ModelArguments(), new DataArguments("SFT data (JSONL): {prompt, completion}, {messages} or {text}."), new TrainingArguments(SftTrainer.DefaultOptions));
        var packing = CliOption.Flag("packing", "Pack several examples into each row without padding.");
        var command = CliCommand.New("sft", "Supervised fine-tuning: the NLL of the completion tokens.", model, data, training, packing);
        command.SetAction(parse =>
        {
            TrainingOptions options = training.Read(parse);
            LoraOptions? lora = model.Lora(parse);
            DataSource source = data.Open(parse, model.Tokenizer(parse));
            var (train, eval) = source.Sft();
            context.Report(source);
            using PolicyModel policy = model.LoadPolicy(parse, lora);
            TrainingResult result = new SftTrainer(policy, options with { PaddingValue = source.PaddingValue }, parse.GetValue(packing), logger: context.Logger, callbacks: context.Callbacks)
                .Train(train, eval, parse.GetValue(training.Resume), context.Cancel);
            return context.Finish(policy.Model, result, options.OutputDir!, "examples", source.TrainReport, source.EvalReport);
        });
        return command;
    }
}
