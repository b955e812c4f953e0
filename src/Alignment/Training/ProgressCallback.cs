namespace Alignment.Training;

/// <summary>Forwards each training step's report (not evaluations) to an <see cref="IProgress{T}"/>.</summary>
/// <param name="progress">The receiver.</param>
public sealed class ProgressCallback(IProgress<TrainingProgress> progress) : ITrainingCallback
{
    readonly IProgress<TrainingProgress> _progress = progress ?? throw new ArgumentNullException(nameof(progress));

    /// <inheritdoc />
    public void OnLog(TrainingProgress progress)
    {
        if (!progress.IsEvaluation)
            _progress.Report(progress);
    }
}
