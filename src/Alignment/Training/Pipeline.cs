using Alignment.Data;
using Alignment.Distributed;
using Alignment.Losses;
using Alignment.Models;
using Microsoft.Extensions.Logging;

namespace Alignment.Training;

/// <summary>What one pipeline stage produced.</summary>
/// <param name="Name">The stage's name.</param>
/// <param name="ModelFolder">The saved Hugging Face folder the next stage starts from.</param>
/// <param name="Result">The training result, or null when the stage was already complete (skipped on resume).</param>
public sealed record StageResult(string Name, string ModelFolder, TrainingResult? Result);

/// <summary>
/// Stages run in sequence — typically base → SFT → preference training — each loading the previous stage's saved
/// folder. Under <c>WORK/N-name/</c> each stage keeps its checkpoints and metrics (<c>run/</c>) and its final model
/// (<c>model/</c>); with <c>resume</c>, finished stages are skipped and the unfinished one continues from its checkpoint.
/// </summary>
/// <param name="baseModelFolder">The Hugging Face folder the first stage starts from.</param>
/// <param name="workFolder">Where each stage keeps its run and its model.</param>
/// <param name="loadOptions">Device and dtype of every stage's model.</param>
/// <param name="logger">Where every stage logs; nowhere when null.</param>
/// <param name="callbacks">Receivers of every stage's step metrics.</param>
public sealed class Pipeline(string baseModelFolder, string workFolder, ModelLoadOptions? loadOptions = null, ILogger? logger = null,
    IEnumerable<ITrainingCallback>? callbacks = null)
{
    const string DoneMarker = "stage.done";
    readonly List<(string Name, TrainingOptions Options, Func<string, string, bool, CancellationToken, TrainingResult> Run)> _stages = [];

    /// <summary>Adds an SFT stage.</summary>
    public Pipeline Sft(IReadOnlyList<TokenizedCompletion> data, TrainingOptions options, LoraOptions? lora = null) =>
        Add("sft", options, (input, run, resume, cancel) => Train(input, run, lora, options, cancel, policy =>
            new SftTrainer(policy, options with { OutputDir = run }, logger: logger, callbacks: callbacks).Train(data, null, resume, cancel)));

    /// <summary>Adds a preference stage; its reference is the stage's starting model (the previous stage's output).</summary>
    public Pipeline Preference(IPreferenceLoss loss, IReadOnlyList<TokenizedPair> data, TrainingOptions options, LoraOptions? lora = null,
        SftMix? sftMix = null) =>
        Add(loss.Name, options, (input, run, resume, cancel) => Train(input, run, lora, options, cancel, policy =>
        {
            using ReferenceModel? reference = loss.Requirements.Reference
                ? lora is null ? ReferenceModel.Own(LlamaForCausalLM.FromPretrained(input, loadOptions)) : policy.CreateReference()
                : null;
            return new PreferenceTrainer(policy, loss, options with { OutputDir = run }, reference, null, sftMix, logger, callbacks).Train(data, null, resume, cancel);
        }));

    /// <summary>Runs every stage in order.</summary>
    /// <returns>One result per stage.</returns>
    public IReadOnlyList<StageResult> Run(bool resume = false, CancellationToken cancellationToken = default)
    {
        var results = new List<StageResult>();
        string input = baseModelFolder;
        for (int i = 0; i < _stages.Count; i++)
        {
            var (name, options, run) = _stages[i];
            string stage = Path.Combine(workFolder, $"{i + 1}-{name}");
            string model = Path.Combine(stage, "model");
            if (resume && File.Exists(Path.Combine(stage, DoneMarker)))
            {
                results.Add(new StageResult(name, model, null));
                input = model;
                continue;
            }
            TrainingResult result = run(input, Path.Combine(stage, "run"), resume, cancellationToken);
            results.Add(new StageResult(name, model, result));
            if (result.StoppedEarly && cancellationToken.IsCancellationRequested)
                break; // the stage's checkpoint is written; resume continues it
            IProcessGroup processes = ProcessGroup.For(options.Distributed, options.MpiLibrary);
            if (processes.Rank == 0)
                File.WriteAllText(Path.Combine(stage, DoneMarker), DateTime.UtcNow.ToString("O"));
            input = model;
        }
        return results;
    }

    Pipeline Add(string name, TrainingOptions options, Func<string, string, bool, CancellationToken, TrainingResult> run)
    {
        _stages.Add((name, options, run));
        return this;
    }

    /// <summary>One stage: load, train, and save the model (rank 0; the other processes wait until it is written).</summary>
    TrainingResult Train(string input, string run, LoraOptions? lora, TrainingOptions options, CancellationToken cancel, Func<PolicyModel, TrainingResult> train)
    {
        using var policy = new PolicyModel(LlamaForCausalLM.FromPretrained(input, loadOptions));
        if (lora is not null)
            LoraAdapters.Attach(policy.Model, lora);
        TrainingResult result = train(policy);
        if (result.StoppedEarly && cancel.IsCancellationRequested)
            return result;
        IProcessGroup processes = ProcessGroup.For(options.Distributed, options.MpiLibrary);
        if (processes.Rank == 0)
            policy.Model.SavePretrained(Path.Combine(Path.GetDirectoryName(run)!, "model"));
        processes.Barrier(); // the next stage loads it on every process
        return result;
    }
}
