namespace Alignment.Training;

/// <summary>Another training run writes to the same output folder.</summary>
/// <param name="message">Names the folder.</param>
/// <param name="inner">The operating system's refusal.</param>
public sealed class OutputFolderInUseException(string message, Exception inner) : IOException(message, inner);

/// <summary>
/// An exclusive lock on a training output folder for the life of a run, so that two runs never interleave
/// <c>metrics.jsonl</c> or mix checkpoints. It is an OS file lock: a process killed with -9 leaves nothing stale.
/// </summary>
internal static class OutputFolderLock
{
    const string LockFile = ".training.lock";

    /// <exception cref="OutputFolderInUseException">Another run holds the folder.</exception>
    public static FileStream Acquire(string folder)
    {
        Directory.CreateDirectory(folder);
        string path = Path.Combine(folder, LockFile);
        try
        {
            return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new OutputFolderInUseException($"'{Path.GetFullPath(folder)}' is in use by another training run; give this run another output folder.", e);
        }
    }
}
