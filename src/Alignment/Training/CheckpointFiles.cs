using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Alignment.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Alignment.Training;

/// <summary>
/// The files every training loop keeps in its output folder: <c>metrics.jsonl</c> and <c>checkpoint-N/</c> folders
/// (trainable weights, optimizer state, a state JSON), each written to <c>checkpoint-N.tmp</c> and renamed into place so a
/// process killed at any moment leaves the last complete checkpoint intact.
/// </summary>
internal static class CheckpointFiles
{
    const string StateFile = "trainer_state.json", WeightsFile = "trainable.safetensors", OptimizerFile = "optimizer.safetensors", MetricsFile = "metrics.jsonl";
    const string ExtraFile = "extra_state.safetensors";

    /// <summary>Appends one metrics line (non-finite values as null).</summary>
    public static void AppendMetrics(string folder, IReadOnlyDictionary<string, double> metrics)
    {
        Directory.CreateDirectory(folder);
        var line = new JsonObject();
        foreach (var (key, value) in metrics)
            line[key] = double.IsFinite(value) ? value : null;
        File.AppendAllText(Path.Combine(folder, MetricsFile), line.ToJsonString() + "\n");
    }

    /// <summary>Keeps the whole metrics lines whose step is at most <paramref name="step"/> (a killed process may leave a partial last line).</summary>
    public static void TruncateMetrics(string folder, int step)
    {
        string path = Path.Combine(folder, MetricsFile);
        if (!File.Exists(path))
            return;
        var kept = File.ReadLines(path).Where(l => StepOf(l) is { } s && s <= step).ToList();
        File.WriteAllLines(path + ".tmp", kept);
        File.Move(path + ".tmp", path, overwrite: true);
    }

    /// <summary>The folder of checkpoint-<paramref name="step"/> in <paramref name="folder"/>.</summary>
    public static string FolderOf(string folder, int step) => Path.Combine(folder, $"checkpoint-{step}");

    /// <summary>Writes checkpoint-<paramref name="step"/>; returns its folder.</summary>
    public static string Save(string folder, int step, IReadOnlyList<(string Name, Parameter Parameter)> trainable, AdamW optimizer, JsonObject state,
        IReadOnlyList<(string Name, Tensor Tensor)>? extra = null)
    {
        string final = FolderOf(folder, step);
        string temporary = final + ".tmp";
        if (Directory.Exists(temporary))
            Directory.Delete(temporary, recursive: true);
        Directory.CreateDirectory(temporary);
        SafeTensors.Save(Path.Combine(temporary, WeightsFile), trainable.Select(t => new KeyValuePair<string, Tensor>(t.Name, t.Parameter)));
        optimizer.Save(Path.Combine(temporary, OptimizerFile));
        if (extra is { Count: > 0 })
            SafeTensors.Save(Path.Combine(temporary, ExtraFile), extra.Select(e => new KeyValuePair<string, Tensor>(e.Name, e.Tensor)));
        state["global_step"] = step;
        File.WriteAllText(Path.Combine(temporary, StateFile), state.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        if (Directory.Exists(final))
            Directory.Delete(final, recursive: true);
        Directory.Move(temporary, final);
        return final;
    }

    /// <summary>Deletes the complete checkpoints past the newest <paramref name="count"/>, keeping the best step's one too.</summary>
    public static void KeepNewest(string folder, int count, int? bestStep)
    {
        string? best = bestStep is { } step ? Path.Combine(folder, $"checkpoint-{step}") : null;
        foreach (string old in Newest(folder).Skip(count).Where(d => d != best).ToList())
            Directory.Delete(old, recursive: true);
    }

        /// <summary>The complete checkpoints (renamed into place, with a state file), newest first.</summary>
    public static IEnumerable<string> Newest(string folder) =>
        !Directory.Exists(folder) ? [] : Directory.GetDirectories(folder, "checkpoint-*")
            .Where(d => !d.EndsWith(".tmp", StringComparison.Ordinal) && File.Exists(Path.Combine(d, StateFile)))
            .Select(d => (Dir: d, Ok: int.TryParse(Path.GetFileName(d)["checkpoint-".Length..], NumberStyles.None, CultureInfo.InvariantCulture, out int s), Step: s))
            .Where(x => x.Ok).OrderByDescending(x => x.Step).Select(x => x.Dir);

    /// <summary>Copies the saved weights into the trainable parameters (and the extra state into <paramref name="extra"/>), loads the optimizer state, and returns the state JSON.</summary>
    /// <exception cref="InvalidDataException">A file of the checkpoint is damaged, or a trainable weight is missing; the message names the file.</exception>
    public static JsonObject Restore(string checkpoint, IReadOnlyList<(string Name, Parameter Parameter)> trainable, AdamW optimizer,
        IReadOnlyList<(string Name, Tensor Tensor)>? extra = null)
    {
        string statePath = Path.Combine(checkpoint, StateFile);
        JsonObject state;
        try
        {
            state = JsonNode.Parse(File.ReadAllText(statePath))?.AsObject() ?? throw new InvalidDataException("it is empty");
            _ = state["global_step"]?.GetValue<int>() ?? throw new InvalidDataException("it has no global_step");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or InvalidDataException)
        {
            throw new InvalidDataException($"'{statePath}' is damaged: {e.Message}", e);
        }
        CopyInto(checkpoint, WeightsFile, trainable.Select(t => (t.Name, (Tensor)t.Parameter)));
        if (extra is { Count: > 0 })
            CopyInto(checkpoint, ExtraFile, extra);
        string optimizerPath = Path.Combine(checkpoint, OptimizerFile);
        if (!File.Exists(optimizerPath))
            throw new InvalidDataException($"'{optimizerPath}' is missing" + (File.Exists(Path.Combine(checkpoint, "optimizer.bin"))
                ? ": the checkpoint was written by an earlier version of Alignment (optimizer.bin), whose optimizer state this version does not read." : "."));
        optimizer.Load(optimizerPath);
        return state;
    }

    /// <summary>Copies the tensors of a checkpoint file into <paramref name="targets"/>, each of which it must hold.</summary>
    static void CopyInto(string checkpoint, string fileName, IEnumerable<(string Name, Tensor Tensor)> targets)
    {
        string path = Path.Combine(checkpoint, fileName);
        if (!File.Exists(path))
            throw new InvalidDataException($"'{path}' is missing: the checkpoint was written by a run that did not keep this state.");
        using var file = SafeTensorsFile.Open(path);
        using var noGrad = no_grad();
        foreach (var (name, target) in targets)
        {
            if (!file.Entries.ContainsKey(name))
                throw new InvalidDataException($"Checkpoint '{checkpoint}' has no tensor '{name}' in {fileName}: it was written for a different model or setup.");
            using Tensor saved = file.Read(name);
            target.copy_(saved);
        }
    }

    static double? StepOf(string line)
    {
        try
        {
            return JsonNode.Parse(line)?["step"]?.GetValue<double>();
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
