namespace Alignment.Training;

/// <summary>Appends each training step's and evaluation's metrics as one line of <c>metrics.jsonl</c> in the output folder.</summary>
internal sealed class MetricsFileCallback(string folder) : ITrainingCallback
{
    public void OnLog(TrainingProgress progress) => CheckpointFiles.AppendMetrics(folder, progress.Metrics);
}
