using Alignment.Losses;

namespace Alignment.Cli.Commands;

/// <summary><c>align dpo</c>: preference training with any loss of the DPO family, CPO/SimPO, ORPO, or KTO on unpaired data.</summary>
internal static class DpoCommand
{
    public static Command Create(CliContext context)
    {
        var (model, data, training, loss) =
            (new ModelArguments(), new DataArguments("Preference data (JSONL): pairs, or labelled completions for KTO."), new TrainingArguments(PreferenceTrainer.DefaultOptions), new LossArguments());
        var reference = CliOption.Text("reference", "Reference model folder; the starting model when not given.", null, "ref_model", "ref-model");
        var precompute = CliOption.Flag("precompute-ref-logps", "Compute the reference's log-probabilities once before training and free the reference.",
            "precompute_ref_log_probs", "precompute-ref-log-probs");
        var sftDataset = CliOption.Text("sft-dataset", "SFT data (JSONL) mixed into training against forgetting.");
        var sftWeight = CliOption.Double("sft-weight", "Interleaved: the weight of the SFT loss; sequential: the share of SFT steps.", new SftMix([]).Weight);
        var sftMode = CliOption.Choice("sft-mix-mode", "How SFT data is mixed in.", "interleaved", ["interleaved", "sequential"]);
        var syncReference = CliOption.Flag("sync-ref-model", "TR-DPO: move the reference towards the policy every --ref-model-sync-steps steps (full-weight training).");
        var mixupAlpha = CliOption.Double("ref-model-mixup-alpha", "TR-DPO: reference ← α·policy + (1 − α)·reference.", new ReferenceSync().MixupAlpha);
        var syncSteps = CliOption.Int("ref-model-sync-steps", "TR-DPO: optimizer steps between reference updates.", new ReferenceSync().SyncSteps);
        var command = CliCommand.New("dpo", "Preference training: DPO and its family, CPO/SimPO, ORPO; KTO on unpaired data.",
            model, data, training, loss, reference, precompute, sftDataset, sftWeight, sftMode, syncReference, mixupAlpha, syncSteps);
        command.SetAction(parse =>
        {
            IPreferenceLoss objective = loss.Create(parse);     // unknown names and bad values fail here, before any loading
            TrainingOptions options = training.Read(parse);
            LoraOptions? lora = model.Lora(parse);
            ReferenceSync? sync = parse.GetValue(syncReference) ? new ReferenceSync(parse.GetValue(mixupAlpha)!.Value, parse.GetValue(syncSteps)!.Value) : null;
            sync?.Validate();
            if (sync is not null && (lora is not null || parse.GetValue(precompute)))
                throw new ArgumentException($"--sync-ref-model updates a reference model of its own; it cannot be combined with {(lora is not null ? "--lora-rank (the reference is the base with the adapters off)" : "--precompute-ref-logps (they assume a fixed reference)")}.");
            DataSource source = data.Open(parse, model.Tokenizer(parse));
            options = options with { PaddingValue = source.PaddingValue };
            bool resume = parse.GetValue(training.Resume);
            // Every file is read and checked before a model loads; then the policy, and the reference when the loss needs one.
            (PolicyModel Policy, ReferenceModel? Reference) Load()
            {
                PolicyModel policy = model.LoadPolicy(parse, lora);
                ReferenceModel? frozen = !objective.Requirements.Reference ? null
                    : parse.GetValue(reference) is { } folder ? ReferenceModel.Own(LlamaForCausalLM.FromPretrained(folder, model.LoadOptions(parse)))
                    : policy.CreateReference();        // without --reference, the starting model is the reference
                return (policy, frozen);
            }
            if (objective.Requirements.Data == PreferenceDataKind.Unpaired)
            {
                var (train, eval) = source.Unpaired();
                context.Report(source);
                var (kto, ktoReference) = Load();
                using (kto)
                using (ktoReference)
                {
                    TrainingResult unpaired = new PreferenceTrainer(kto, objective, options, ktoReference, logger: context.Logger, callbacks: context.Callbacks) { SyncReference = sync }.Train(train, eval, resume, context.Cancel);
                    return context.Finish(kto.Model, unpaired, options.OutputDir!, "examples", source.TrainReport, source.EvalReport);
                }
            }
            var (pairs, evalPairs) = source.Pairs();
            SftMix? mix = parse.GetValue(sftDataset) is { } sftFile
                ? new SftMix(source.SftFrom(File.Exists(sftFile) ? sftFile : throw new FileNotFoundException($"--sft-dataset: no file at '{sftFile}'.", sftFile)),
                    parse.GetValue(sftWeight)!.Value, parse.GetValue(sftMode) == "sequential" ? SftMixMode.Sequential : SftMixMode.Interleaved)
                : null;
            mix?.Validate();
            context.Report(source);
            var (policy, referenceModel) = Load();
            using (policy)
            using (referenceModel)
            {
                ReferenceLogProbs? precomputed = null;
                if (referenceModel is not null && parse.GetValue(precompute))
                {
                    precomputed = ReferenceLogProbs.Compute(referenceModel, [.. pairs, .. evalPairs ?? []], options);
                    if (context.WritesFiles)
                        precomputed.Save(Path.Combine(options.OutputDir!, "reference_logps.tsv"));
                }
                TrainingResult result = new PreferenceTrainer(policy, objective, options, precomputed is null ? referenceModel : null, precomputed, mix, logger: context.Logger, callbacks: context.Callbacks)
                    { SyncReference = sync }.Train(pairs, evalPairs, resume, context.Cancel);
                return context.Finish(policy.Model, result, options.OutputDir!, "pairs", source.TrainReport, source.EvalReport);
            }
        });
        return command;
    }
}
