using System.Security.Cryptography;
using Alignment.Data;
using Alignment.Distributed;
using Alignment.Models;
using static TorchSharp.torch;

namespace Alignment.Training;

/// <summary>
/// Reference-model log-probabilities computed once over a dataset and kept (and cached on disk), so that a
/// full-weight policy trains without a reference model in memory.
/// </summary>
public sealed class ReferenceLogProbs
{
    readonly Dictionary<string, (double Chosen, double Rejected)> _byPair;

    ReferenceLogProbs(Dictionary<string, (double, double)> byPair) => _byPair = byPair;

    /// <summary>Number of pairs held.</summary>
    public int Count => _byPair.Count;

    /// <summary>
    /// Runs the reference over every pair (no-grad, in batches). With more than one process (<see cref="TrainingOptions.Distributed"/>)
    /// each computes every world-size-th batch and every process receives all the values.
    /// </summary>
    /// <param name="reference">The reference model.</param>
    /// <param name="pairs">The pairs to score.</param>
    /// <param name="options">Batch size and padding value of the batches; defaults when null.</param>
    public static ReferenceLogProbs Compute(ICausalLM reference, IReadOnlyList<TokenizedPair> pairs, TrainingOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(pairs);
        options ??= new TrainingOptions();
        using var settings = RunSettings.Apply(options, reference);
        IProcessGroup processes = ProcessGroup.For(options.Distributed, options.MpiLibrary);
        TokenizedPair[][] batches = pairs.Chunk(options.BatchSize).ToArray();
        // Each process computes every world-size-th batch; rows of (pair index, chosen, rejected), padded with index −1, are gathered.
        int mine = (batches.Length + processes.WorldSize - 1) / processes.WorldSize;
        var rows = new double[mine * options.BatchSize, 3];
        for (int r = 0; r < rows.GetLength(0); r++)
            rows[r, 0] = -1;
        int row = 0;
        for (int b = processes.Rank; b < batches.Length; b += processes.WorldSize)
        {
            using var scope = NewDisposeScope();
            TokenizedPair[] batch = batches[b];
            using PreferenceBatch collated = PreferenceCollator.Collate(batch, options.PaddingValue, reference.Device);
            double[] sums = BatchForward.Sums(reference, collated.InputIds, collated.AttentionMask, collated.Targets).to_type(ScalarType.Float64).data<double>().ToArray();
            for (int i = 0; i < batch.Length; i++, row++)
                (rows[row, 0], rows[row, 1], rows[row, 2]) = ((double)b * options.BatchSize + i, sums[i], sums[batch.Length + i]);
        }
        using Tensor local = tensor(rows);
        using Tensor all = processes.AllGather(local);
        double[] flat = all.data<double>().ToArray();
        var values = new Dictionary<string, (double, double)>();
        for (int r = 0; r + 2 < flat.Length; r += 3)
            if (flat[r] >= 0)
                values[KeyOf(pairs[(int)flat[r]])] = (flat[r + 1], flat[r + 2]);
        return new ReferenceLogProbs(values);
    }

    /// <summary>The reference's summed log-probabilities of a pair's chosen and rejected completions.</summary>
    /// <exception cref="KeyNotFoundException">The pair was not part of the precomputed dataset.</exception>
    public (double Chosen, double Rejected) this[TokenizedPair pair] => _byPair.TryGetValue(KeyOf(pair), out var value) ? value
        : throw new KeyNotFoundException($"No precomputed reference log-probabilities for the pair from {pair.Source}: precompute over the same data.");

    /// <summary>Writes the cache (one line per pair: key, chosen, rejected).</summary>
    public void Save(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.WriteAllLines(path + ".tmp", _byPair.Select(kv => FormattableString.Invariant($"{kv.Key}\t{kv.Value.Chosen:R}\t{kv.Value.Rejected:R}")));
        File.Move(path + ".tmp", path, overwrite: true);
    }

    /// <summary>Reads a cache written by <see cref="Save"/>.</summary>
    /// <exception cref="InvalidDataException">A malformed line, naming the file and line.</exception>
    public static ReferenceLogProbs Load(string path)
    {
        var values = new Dictionary<string, (double, double)>();
        int number = 0;
        foreach (string line in File.ReadLines(path))
        {
            number++;
            string[] parts = line.Split('\t');
            if (parts.Length != 3 || !double.TryParse(parts[1], System.Globalization.CultureInfo.InvariantCulture, out double c)
                || !double.TryParse(parts[2], System.Globalization.CultureInfo.InvariantCulture, out double r))
                throw new InvalidDataException($"{path}:{number}: not a reference log-probability line.");
            values[parts[0]] = (c, r);
        }
        return new ReferenceLogProbs(values);
    }

    static string KeyOf(TokenizedPair pair)
    {
        var bytes = new List<byte>();
        foreach (int[] part in new[] { pair.Prompt, pair.Chosen, pair.Rejected })
        {
            bytes.AddRange(BitConverter.GetBytes(part.Length));
            foreach (int id in part)
                bytes.AddRange(BitConverter.GetBytes(id));
        }
        return Convert.ToHexString(SHA256.HashData(bytes.ToArray()));
    }
}
