using System.Globalization;
using System.Text.RegularExpressions;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Alignment.Benchmarks;

/// <summary>
/// Measures how much resident memory an operation adds at its peak. LibTorch allocates CPU tensors with the
/// native allocator, which BenchmarkDotNet's MemoryDiagnoser does not see; the kernel's peak-RSS mark does.
/// </summary>
/// <remarks>
/// Before the operation: free heap pages go back to the system (<c>malloc_trim</c>) and the peak mark is reset to
/// the current RSS (writing 5 to <c>/proc/self/clear_refs</c>). After it: peak added = VmHWM − that RSS.
/// </remarks>
internal static class PeakNativeMemory
{
    public static readonly string FilePath = Path.GetFullPath(Path.Combine("BenchmarkDotNet.Artifacts", "peak-native-memory.tsv"));

    /// <summary>Called by the host before any benchmark runs: starts an empty record.</summary>
    public static void StartRecording()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(FilePath)!);
        File.WriteAllText(FilePath, "");
    }

    /// <summary>Runs <paramref name="operation"/> once and records the resident memory it added at its peak.</summary>
    public static void Record(string key, Action operation)
    {
        long peak = Measure(operation);
        File.AppendAllText(FilePath, $"{key}\t{peak.ToString(CultureInfo.InvariantCulture)}\n");
    }

    /// <summary>Bytes of resident memory <paramref name="operation"/> added at its peak (Linux only; -1 elsewhere).</summary>
    public static long Measure(Action operation)
    {
        if (!OperatingSystem.IsLinux())
        {
            operation();
            return -1;
        }
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long baseline = ResetPeak();
        operation();
        return PeakBytes() - baseline;
    }

    /// <summary>
    /// Hands freed heap pages back (<c>malloc_trim</c>, unless <paramref name="trim"/> is false), resets the peak mark to
    /// the current RSS, and returns that RSS in bytes.
    /// </summary>
    public static long ResetPeak(bool trim = true)
    {
        if (trim)
            Alignment.Native.NativeHeap.ReleaseFreed();
        File.WriteAllText("/proc/self/clear_refs", "5");
        return StatusKilobytes("VmRSS") * 1024;
    }

    /// <summary>The peak resident bytes (VmHWM) since the last <see cref="ResetPeak"/>.</summary>
    public static long PeakBytes() => StatusKilobytes("VmHWM") * 1024;

    /// <summary>The record key of a benchmark method with its parameter values, e.g. <c>Naive|Shape=2048x32000x512</c>.</summary>
    public static string Key(string method, IEnumerable<(string Name, object? Value)> parameters) =>
        method + "|" + string.Join(",", parameters.Select(p => $"{p.Name}={p.Value}"));

    public static string Key(BenchmarkCase benchmark) =>
        Key(benchmark.Descriptor.WorkloadMethod.Name, benchmark.Parameters.Items.Select(p => (p.Name, (object?)p.Value)));

    /// <summary>The last recorded peak for each key.</summary>
    public static Dictionary<string, long> Load()
    {
        var peaks = new Dictionary<string, long>();
        if (!File.Exists(FilePath))
            return peaks;
        foreach (string line in File.ReadAllLines(FilePath))
        {
            string[] parts = line.Split('\t');
            if (parts.Length == 2 && long.TryParse(parts[1], CultureInfo.InvariantCulture, out long bytes))
                peaks[parts[0]] = bytes;
        }
        return peaks;
    }

    static long StatusKilobytes(string field)
    {
        Match match = Regex.Match(File.ReadAllText("/proc/self/status"), field + @":\s+(\d+) kB");
        return match.Success ? long.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
    }
}

/// <summary>Shows the peak native memory each benchmark case added, as recorded by its own process.</summary>
internal sealed class PeakNativeMemoryColumn : IColumn
{
    public string Id => nameof(PeakNativeMemoryColumn);
    public string ColumnName => "Peak native memory";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Size;
    public string Legend => "Resident memory the operation added at its peak (VmHWM − VmRSS before), native allocations included";

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) =>
        PeakNativeMemory.Load().TryGetValue(PeakNativeMemory.Key(benchmarkCase), out long bytes) && bytes >= 0
            ? $"{bytes / (1024.0 * 1024.0):F1} MiB"
            : "n/a";

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;
}
