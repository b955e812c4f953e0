namespace Alignment.Training;

/// <summary>How training ended; every trainer's <c>Train</c> returns one.</summary>
/// <param name="Steps">Training steps done in total (including those before a resume).</param>
/// <param name="TotalSteps">Planned steps.</param>
/// <param name="StoppedEarly">Early stopping or cancellation ended it before the plan.</param>
/// <param name="LastCheckpoint">The newest checkpoint folder written, if any.</param>
/// <param name="History">Every logged step's metrics (training and evaluation), in order, each with its <c>step</c>.</param>
public sealed record TrainingResult(int Steps, int TotalSteps, bool StoppedEarly, string? LastCheckpoint, IReadOnlyList<IReadOnlyDictionary<string, double>> History);

/// <summary>A loss or gradient became NaN or infinite; the weights were not updated from it.</summary>
public sealed class NonFiniteLossException(string message) : InvalidOperationException(message);
