namespace Alignment.Training;

/// <summary>
/// A callback that also measures: at every evaluation point of the run (each <c>eval_steps</c>, and the last step —
/// with or without an evaluation set) the engine calls <see cref="Evaluate"/> under no-grad and records its metrics,
/// prefixed <c>eval_</c>, with the evaluation's, so they reach metrics.jsonl, TensorBoard, early stopping and every
/// callback. After each evaluation a <see cref="StopRequested"/> ends the run as early stopping does (a checkpoint is
/// written).
/// </summary>
public interface IEvaluationCallback : ITrainingCallback
{
    /// <summary>This callback's metrics at the end of <paramref name="step"/>, named without the <c>eval_</c> prefix.</summary>
    /// <param name="step">Optimizer steps done.</param>
    IReadOnlyDictionary<string, double> Evaluate(int step);

    /// <summary>Whether the run should stop after this evaluation.</summary>
    bool StopRequested => false;
}
