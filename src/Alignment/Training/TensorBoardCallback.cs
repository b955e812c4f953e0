namespace Alignment.Training;

/// <summary>
/// Writes every metric as a TensorBoard scalar (TorchSharp's <c>SummaryWriter</c>, flushed on each write): training
/// metrics under <c>train/NAME</c>, evaluation metrics under <c>eval/NAME</c>, at the step they belong to.
/// Non-finite values are left out.
/// </summary>
/// <param name="folder">The log folder (created when missing).</param>
public sealed class TensorBoardCallback(string folder) : ITrainingCallback
{
    readonly string _folder = folder ?? throw new ArgumentNullException(nameof(folder));
    TorchSharp.Modules.SummaryWriter? _writer;

    /// <inheritdoc />
    public void OnTrainBegin(int startStep, int totalSteps) => _writer ??= TorchSharp.torch.utils.tensorboard.SummaryWriter(_folder);

    /// <inheritdoc />
    public void OnLog(TrainingProgress progress)
    {
        _writer ??= TorchSharp.torch.utils.tensorboard.SummaryWriter(_folder);
        foreach (var (key, value) in progress.Metrics)
            if (key != "step" && double.IsFinite(value))
                _writer.add_scalar(key.StartsWith("eval_", StringComparison.Ordinal) ? "eval/" + key[5..] : "train/" + key, (float)value, progress.Step);
    }
}
