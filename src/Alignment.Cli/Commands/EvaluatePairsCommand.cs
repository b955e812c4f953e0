using System.Globalization;
using Alignment.Losses;

namespace Alignment.Cli.Commands;

/// <summary><c>align evaluate-pairs</c>: implicit-reward metrics of a policy against its reference on preference pairs.</summary>
internal static class EvaluatePairsCommand
{
    public static Command Create(CliContext context)
    {
        var (model, data) = (new ModelArguments(lora: false), new DataArguments("Preference pairs (JSONL) to evaluate on.", evaluation: false));
        var reference = CliOption.Text("reference", "The reference model folder (typically the SFT model).", null, "ref_model", "ref-model");
        reference.Required = true;
        var beta = CliOption.Double("beta", "β of the implicit reward.", new PreferenceLossOptions().Beta);
        var batchSize = CliOption.Int("batch-size", "Pairs per forward pass.", PreferenceTrainer.DefaultOptions.BatchSize, "per_device_eval_batch_size");
        var command = CliCommand.New("evaluate-pairs", "Implicit-reward accuracy and margins of a policy against its reference on pairs.", model, data, reference, beta, batchSize);
        command.SetAction(parse =>
        {
            IPreferenceLoss loss = PreferenceLosses.Dpo(parse.GetValue(beta));
            DataSource source = data.Open(parse, model.Tokenizer(parse));
            var options = PreferenceTrainer.DefaultOptions with { BatchSize = parse.GetValue(batchSize)!.Value, PaddingValue = source.PaddingValue };
            options.Validate();
            var (pairs, _) = source.Pairs();
            using var policy = new PolicyModel(LlamaForCausalLM.FromPretrained(model.Folder(parse), model.LoadOptions(parse)));
            using var referenceModel = ReferenceModel.Own(LlamaForCausalLM.FromPretrained(parse.GetValue(reference)!, model.LoadOptions(parse)));
            var trainer = new PreferenceTrainer(policy, loss, options, referenceModel);
            foreach (var (name, value) in trainer.Evaluate(pairs).OrderBy(kv => kv.Key, StringComparer.Ordinal))
                context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name}\t{value:G6}"));
            context.Output.WriteLine(source.TrainReport.Describe("pairs"));
            return 0;
        });
        return command;
    }
}
