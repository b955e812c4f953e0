using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Alignment.Data;

/// <summary>Where a record came from.</summary>
/// <param name="File">The file's path.</param>
/// <param name="Line">1-based line number.</param>
public sealed record SourceLocation(string File, long Line)
{
    /// <inheritdoc />
    public override string ToString() => $"{File}:{Line}";
}

/// <summary>A record that does not fit its format: names the file, the line and the field.</summary>
public sealed class DataFormatException : FormatException
{
    /// <summary>Creates the exception; the message reads <c>file:line: field 'name': problem</c>.</summary>
    public DataFormatException(SourceLocation source, string? field, string problem, Exception? inner = null)
        : base($"{source}: {(field is null ? "" : $"field '{field}': ")}{problem}", inner)
    {
        Location = source;
        Field = field;
        Problem = problem;
    }

    /// <summary>The file and line.</summary>
    public SourceLocation Location { get; }

    /// <summary>The offending field, or null when the whole line is at fault.</summary>
    public string? Field { get; }

    /// <summary>What is wrong, without the location.</summary>
    public string Problem { get; }
}

/// <summary>How readers treat bad records.</summary>
public sealed record DataReadOptions
{
    /// <summary>Skip a malformed record (and report it) instead of stopping with its error.</summary>
    public bool SkipBadRows { get; init; }

    /// <summary>How many skipped lines the report lists by number.</summary>
    public int ReportedLineLimit { get; init; } = 10;
}

/// <summary>What a read saw: counts, the first skipped lines with their reasons, and suspicious records.</summary>
public sealed class DataReadReport
{
    readonly int _limit;

    /// <summary>A report that lists at most <paramref name="reportedLineLimit"/> lines of each kind.</summary>
    public DataReadReport(int reportedLineLimit = 10) => _limit = reportedLineLimit;

    /// <summary>Non-blank lines read.</summary>
    public long LinesRead { get; internal set; }

    /// <summary>Records produced (a line may yield several, or none when skipped).</summary>
    public long RecordsProduced { get; internal set; }

    /// <summary>Lines skipped as malformed.</summary>
    public long Skipped { get; private set; }

    /// <summary>The first skipped lines, with why.</summary>
    public List<DataFormatException> SkippedExamples { get; } = [];

    /// <summary>Records identical to an earlier one.</summary>
    public long Duplicates { get; private set; }

    /// <summary>The first duplicate records' locations.</summary>
    public List<SourceLocation> DuplicateExamples { get; } = [];

    /// <summary>Pairs whose chosen and rejected completions are equal (they teach nothing).</summary>
    public long ChosenEqualsRejected { get; private set; }

    /// <summary>The first such pairs' locations.</summary>
    public List<SourceLocation> ChosenEqualsRejectedExamples { get; } = [];

    internal void AddSkipped(DataFormatException error)
    {
        Skipped++;
        if (SkippedExamples.Count < _limit)
            SkippedExamples.Add(error);
    }

    internal void AddDuplicate(SourceLocation source)
    {
        Duplicates++;
        if (DuplicateExamples.Count < _limit)
            DuplicateExamples.Add(source);
    }

    internal void AddChosenEqualsRejected(SourceLocation source)
    {
        ChosenEqualsRejected++;
        if (ChosenEqualsRejectedExamples.Count < _limit)
            ChosenEqualsRejectedExamples.Add(source);
    }

    /// <inheritdoc />
    public override string ToString()
    {
        var lines = new List<string> { $"{LinesRead} lines read, {RecordsProduced} records, {Skipped} skipped" };
        if (Skipped > 0)
            lines.Add("skipped: " + string.Join("; ", SkippedExamples.Select(e => e.Message)) + (Skipped > SkippedExamples.Count ? "; …" : ""));
        if (Duplicates > 0)
            lines.Add($"{Duplicates} duplicate(s), first at " + string.Join(", ", DuplicateExamples));
        if (ChosenEqualsRejected > 0)
            lines.Add($"{ChosenEqualsRejected} pair(s) with chosen == rejected, first at " + string.Join(", ", ChosenEqualsRejectedExamples));
        return string.Join(Environment.NewLine, lines);
    }
}

/// <summary>Streams the JSON objects of a JSONL file, one line at a time (a file of any size is never loaded whole).</summary>
internal static class JsonlReader
{
    /// <summary>Each non-blank line parsed as a JSON object, with its location.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="DataFormatException">A line is not a JSON object (unless skipped; see <paramref name="options"/>).</exception>
    public static IEnumerable<(JsonObject Record, SourceLocation Source)> Read(string path, DataReadOptions? options = null, DataReadReport? report = null)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"No data file at '{path}'.", path);
        options ??= new DataReadOptions();
        foreach (var (number, line, badByte) in Utf8Lines(path))
        {
            if (line is not null && string.IsNullOrWhiteSpace(line))
                continue;
            if (report is not null)
                report.LinesRead++;
            var source = new SourceLocation(path, number);
            JsonObject? record = null;
            DataFormatException? error = null;
            try
            {
                if (line is null)
                    throw new DataFormatException(source, null, $"the line is not valid UTF-8 (byte {badByte} of the line).");
                record = JsonNode.Parse(line) as JsonObject ?? throw new DataFormatException(source, null, "the line is not a JSON object.");
            }
            catch (JsonException e)
            {
                error = new DataFormatException(source, null, $"not valid JSON ({e.Message}).", e);
            }
            catch (DataFormatException e)
            {
                error = e;
            }
            if (error is not null)
            {
                if (!options.SkipBadRows)
                    throw error;
                report?.AddSkipped(error);
                continue;
            }
            yield return (record!, source);
        }
    }

    static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// The file's lines (1-based numbers), decoded as strict UTF-8 one line at a time: a line with an invalid byte comes
    /// back as null with the offset of the first bad byte, instead of U+FFFD replacing it silently. A UTF-8 byte-order
    /// mark and the <c>\r</c> of CRLF line ends are dropped.
    /// </summary>
    static IEnumerable<(long Number, string? Line, int BadByte)> Utf8Lines(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        var pending = new List<byte>(256);
        byte[] buffer = new byte[1 << 16];
        long number = 0;
        bool first = true;
        int read;
        while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
        {
            int start = 0;
            if (first && read >= 3 && buffer[0] == 0xEF && buffer[1] == 0xBB && buffer[2] == 0xBF)
                start = 3;
            first = false;
            for (int end; (end = Array.IndexOf(buffer, (byte)'\n', start, read - start)) >= 0; start = end + 1)
            {
                pending.AddRange(new ArraySegment<byte>(buffer, start, end - start));
                yield return Decode(++number, pending);
                pending.Clear();
            }
            pending.AddRange(new ArraySegment<byte>(buffer, start, read - start));
        }
        if (pending.Count > 0)
            yield return Decode(++number, pending);
    }

    static (long, string?, int) Decode(long number, List<byte> bytes)
    {
        int length = bytes.Count > 0 && bytes[^1] == (byte)'\r' ? bytes.Count - 1 : bytes.Count;
        byte[] line = bytes.GetRange(0, length).ToArray();
        try
        {
            return (number, Strict.GetString(line), 0);
        }
        catch (DecoderFallbackException e)
        {
            return (number, null, e.Index);
        }
    }
}
