using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Alignment.Cli.Tests;

/// <summary>
/// Runs <c>align</c> (this test's build of it) under a real MPI launcher, or alone as a child process. The launchers are
/// Debian's: <c>mpirun.openmpi</c> (Open MPI) and <c>mpirun.mpich</c> (MPICH's Hydra).
/// </summary>
internal static class MpiRuns
{
    public static readonly string[] Kinds = ["openmpi", "mpich"];

    static string AlignDll => Path.Combine(AppContext.BaseDirectory, "align.dll");

    /// <summary>Why MPI tests cannot run here (no launcher on the PATH), or null when both launchers are there.</summary>
    public static string? Missing { get; } = Kinds.Select(Launcher).FirstOrDefault(l => Which(l) is null) is { } absent
        ? $"'{absent}' is not on the PATH (install openmpi-bin and mpich; .ci/run does)"
        : null;

    static string Launcher(string kind) => kind == "openmpi" ? "mpirun.openmpi" : "mpirun.mpich";

    static string? Which(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists);

    /// <summary>The launcher's command line for <paramref name="processes"/> ranks of <c>dotnet align.dll</c>.</summary>
    public static (string Program, List<string> Args) Command(string kind, int processes, IEnumerable<string> alignArgs)
    {
        var args = kind == "openmpi" ? new List<string> { "--allow-run-as-root", "--oversubscribe", "-np", $"{processes}" } : ["-np", $"{processes}"];
        args.AddRange(["dotnet", AlignDll, .. alignArgs]);
        return (Launcher(kind), args);
    }

    /// <summary>Runs to the end (at most <paramref name="timeout"/>); returns the exit code and everything printed.</summary>
    public static (int Code, string Text) Run(string program, IEnumerable<string> args, TimeSpan? timeout = null)
    {
        using Process process = Start(program, args);
        var text = new System.Text.StringBuilder();
        process.OutputDataReceived += (_, e) => { lock (text) text.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (text) text.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(timeout ?? TimeSpan.FromMinutes(3)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} {string.Join(' ', args)} did not end in time:\n{text}");
        }
        process.WaitForExit();
        lock (text)
            return (process.ExitCode, text.ToString());
    }

    /// <summary><c>align</c> alone, as a child process.</summary>
    public static (int Code, string Text) Alone(IEnumerable<string> alignArgs) => Run("dotnet", [AlignDll, .. alignArgs]);

    public static Process Start(string program, IEnumerable<string> args)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in args)
            start.ArgumentList.Add(arg);
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        return Process.Start(start) ?? throw new InvalidOperationException($"{program} did not start.");
    }

    /// <summary>The process ids of the ranks whose command line mentions <paramref name="marker"/>, by rank.</summary>
    public static Dictionary<int, int> Ranks(string marker)
    {
        var ranks = new Dictionary<int, int>();
        foreach (string dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid))
                continue;
            try
            {
                string commandLine = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
                if (!commandLine.Contains(marker, StringComparison.Ordinal) || !commandLine.Contains("align.dll", StringComparison.Ordinal)
                    || commandLine.Contains("mpirun", StringComparison.Ordinal))
                    continue;
                foreach (string variable in File.ReadAllText(Path.Combine(dir, "environ")).Split('\0'))
                    if ((variable.StartsWith("OMPI_COMM_WORLD_RANK=", StringComparison.Ordinal) || variable.StartsWith("PMI_RANK=", StringComparison.Ordinal))
                        && int.TryParse(variable[(variable.IndexOf('=') + 1)..], out int rank))
                        ranks[rank] = pid;
            }
            catch (IOException)
            {
                // the process ended while being read
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
        return ranks;
    }

    /// <summary>Each line of a metrics.jsonl.</summary>
    public static List<Dictionary<string, double>> Metrics(string folder) =>
        File.ReadAllLines(Path.Combine(folder, "metrics.jsonl"))
            .Select(l => JsonNode.Parse(l)!.AsObject().Where(kv => kv.Value is JsonValue).ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<double>()))
            .ToList();
}

/// <summary>A theory that needs both MPI launchers: skipped where they are missing, unless <c>CI=true</c>, where it fails.</summary>
public sealed class MpiTheoryAttribute : TheoryAttribute
{
    public MpiTheoryAttribute()
    {
        if (MpiRuns.Missing is { } reason && Environment.GetEnvironmentVariable("CI") != "true")
            Skip = "MPI tests skipped: " + reason;
    }
}
