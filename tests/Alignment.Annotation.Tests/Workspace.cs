namespace Alignment.Annotation.Tests;

/// <summary>A temp folder with a candidates file and a store in it, deleted by the test.</summary>
internal sealed class Workspace : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("alignment-annotation-").FullName;

    public string File(string name, params string[] lines)
    {
        string path = Path.Combine(Root, name);
        System.IO.File.WriteAllLines(path, lines);
        return path;
    }

    /// <summary>A store of <paramref name="count"/> pairwise items "p{i}" with completions "a{i}" and "b{i}".</summary>
    public SqliteAnnotationStore Store(int count = 4, int labels = 3, AnnotationMode mode = AnnotationMode.Pairwise, string name = "a.db")
    {
        string input = File($"{name}.jsonl", Enumerable.Range(1, count).Select(i => mode == AnnotationMode.Pairwise
            ? $$"""{"prompt": "p{{i}}", "completion_a": "a{{i}}", "completion_b": "b{{i}}"}"""
            : $$"""{"prompt": "p{{i}}", "completions": ["x{{i}}", "y{{i}}", "z{{i}}"]}""").ToArray());
        var store = SqliteAnnotationStore.Open(Path.Combine(Root, name), mode, labels);
        store.Import(CandidateReader.Read(input, mode));
        return store;
    }

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(Root, recursive: true);
    }
}
