namespace Alignment.Tests.Data;

/// <summary>A temporary folder for data files, deleted with the test class.</summary>
public abstract class TempJsonl : IDisposable
{
    protected TempJsonl(string prefix) => Folder = Directory.CreateTempSubdirectory(prefix).FullName;

    protected string Folder { get; }

    /// <summary>Writes the lines to a new .jsonl file and returns its path.</summary>
    protected string File(params string[] lines)
    {
        string path = Path.Combine(Folder, $"d{Guid.NewGuid():N}.jsonl");
        System.IO.File.WriteAllLines(path, lines);
        return path;
    }

    public void Dispose()
    {
        Directory.Delete(Folder, recursive: true);
        GC.SuppressFinalize(this);
    }
}
