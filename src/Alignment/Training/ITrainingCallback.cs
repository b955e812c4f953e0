namespace Alignment.Training;

/// <summary>One logged step's (or evaluation's) metrics.</summary>
/// <param name="Step">Training steps done (1-based): optimizer steps, or rollout-and-update iterations for <c>PpoLoop</c>.</param>
/// <param name="TotalSteps">Planned steps.</param>
/// <param name="Metrics">The metrics, with TRL's names; an evaluation's carry the <c>eval_</c> prefix.</param>
/// <param name="Elapsed">Time since training (or resuming) started.</param>
/// <param name="IsEvaluation">Whether these are evaluation metrics rather than a training step's.</param>
public sealed record TrainingProgress(int Step, int TotalSteps, IReadOnlyDictionary<string, double> Metrics, TimeSpan Elapsed, bool IsEvaluation = false);

/// <summary>
/// Receives what the training engine reports, like transformers' <c>TrainerCallback</c>. <c>metrics.jsonl</c>,
/// TensorBoard and the <c>align</c> progress bar are implementations; pass your own to any trainer's constructor.
/// Callbacks run on the training thread, between steps: keep them quick.
/// </summary>
public interface ITrainingCallback
{
    /// <summary>Training starts (or resumes) at <paramref name="startStep"/> of <paramref name="totalSteps"/>.</summary>
    void OnTrainBegin(int startStep, int totalSteps)
    {
    }

    /// <summary>A training step ended, or an evaluation ran (<see cref="TrainingProgress.IsEvaluation"/>).</summary>
    void OnLog(TrainingProgress progress);

    /// <summary>A checkpoint folder was written completely.</summary>
    void OnCheckpoint(string folder)
    {
    }

    /// <summary>Training ended (finished, stopped early or cancelled).</summary>
    void OnTrainEnd(TrainingResult result)
    {
    }
}
