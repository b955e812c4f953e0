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
            TokenizationOptions limits = data.Tokenization(parse);
            string trainFile = data.TrainFile(parse);
            string? evalFile = data.EvalFile(parse);
            var (tokenizer, template) = ModelArguments.TokenizerOf(model.Folder(parse));
            var tokenize = new PreferenceTokenizer(tokenizer, template, limits);
            var report = new TokenizationReport();
            var evalReport = evalFile is null ? null : new TokenizationReport();
            List<TokenizedCompletion> Read(string path, TokenizationReport counts) =>
                PreferenceFormats.ReadSft(path, data.ReadOptions(parse)).Select(e => tokenize.Tokenize(e, counts)).OfType<TokenizedCompletion>().ToList();
            var train = Read(trainFile, report);
            var eval = evalFile is null ? null : Read(evalFile, evalReport!);
            using PolicyModel policy = model.LoadPolicy(parse, lora);
            TrainingResult result = new SftTrainer(policy, options with { PaddingValue = tokenizer.PadTokenId ?? 0 }, parse.GetValue(packing), callbacks: context.Callbacks)
                .Train(train, eval, parse.GetValue(training.Resume), context.Cancel);
            return context.Finish(policy.Model, result, options.OutputDir!, "examples", report, evalReport);
        });
        return command;
    }
}
