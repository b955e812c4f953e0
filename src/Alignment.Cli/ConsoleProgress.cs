using System.Globalization;

namespace Alignment.Cli;

/// <summary>
/// The training progress on the console: a bar on an interactive terminal, one line per step otherwise; each
/// evaluation on a line of its own. The headline metric is <c>objective/rlhf_reward</c> for on-policy runs, <c>loss</c>
/// otherwise.
/// </summary>
internal sealed class ConsoleProgress(TextWriter output) : ITrainingCallback
{
    readonly bool _interactive = ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected;

    public void OnLog(TrainingProgress p)
    {
        if (p.IsEvaluation)
        {
            if (_interactive)
                output.WriteLine();
            output.WriteLine($"eval at step {p.Step}: " + string.Join(", ", p.Metrics.Where(kv => kv.Key != "step")
                .OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key} {kv.Value:G5}"))));
            return;
        }
        string name = p.Metrics.ContainsKey("objective/rlhf_reward") ? "objective/rlhf_reward" : "loss";
        double value = p.Metrics.GetValueOrDefault(name);
        TimeSpan eta = p.Step == 0 ? TimeSpan.Zero : p.Elapsed / p.Step * (p.TotalSteps - p.Step);
        if (_interactive)
        {
            int filled = (int)(30.0 * p.Step / p.TotalSteps);
            output.Write(string.Create(CultureInfo.InvariantCulture,
                $"\r[{new string('#', filled)}{new string('.', 30 - filled)}] {p.Step}/{p.TotalSteps} {name} {value:F4} ETA {eta:hh\\:mm\\:ss}   "));
        }
        else
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"step {p.Step}/{p.TotalSteps} {name} {value:F4} eta {eta:hh\\:mm\\:ss}"));
        }
    }
}
