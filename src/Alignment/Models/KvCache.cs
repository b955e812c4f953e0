using static TorchSharp.torch;

namespace Alignment.Models;

/// <summary>
/// Keys and values of every decoder layer for the tokens seen so far, so that generation feeds only the new token.
/// The cache owns its tensors (they live outside any dispose scope); dispose it when generation ends.
/// </summary>
public sealed class KvCache : IDisposable
{
    readonly Layer[] _layers;

    /// <summary>An empty cache for a model with <paramref name="layers"/> decoder layers.</summary>
    public KvCache(int layers) => _layers = Enumerable.Range(0, layers).Select(_ => new Layer()).ToArray();

    /// <summary>Number of positions cached.</summary>
    public long Length => _layers.Length == 0 || _layers[0].Keys is null ? 0 : _layers[0].Keys!.shape[2];

    internal Layer this[int index] => _layers[index];

    /// <summary>Keeps only the batch rows in <paramref name="rows"/> (for example after some sequences finished).</summary>
    /// <param name="rows">[B'] int64 indices into the current batch.</param>
    public void SelectRows(Tensor rows)
    {
        foreach (Layer layer in _layers)
            layer.Select(rows);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (Layer layer in _layers)
            layer.Dispose();
    }

    /// <summary>One layer's keys and values, [B, nKV, S, hd].</summary>
    internal sealed class Layer : IDisposable
    {
        public Tensor? Keys { get; private set; }
        public Tensor? Values { get; private set; }

        /// <summary>Appends the new positions and returns the full keys and values.</summary>
        public (Tensor Keys, Tensor Values) Append(Tensor keys, Tensor values)
        {
            Tensor newKeys = Keys is null ? keys.detach().clone() : cat([Keys, keys.detach()], 2);
            Tensor newValues = Values is null ? values.detach().clone() : cat([Values, values.detach()], 2);
            Replace(newKeys, newValues);
            return (Keys!, Values!);
        }

        public void Select(Tensor rows)
        {
            if (Keys is null)
                return;
            Replace(Keys.index_select(0, rows), Values!.index_select(0, rows));
        }

        void Replace(Tensor keys, Tensor values)
        {
            Keys?.Dispose();
            Values?.Dispose();
            Keys = keys.DetachFromDisposeScope();
            Values = values.DetachFromDisposeScope();
        }

        public void Dispose()
        {
            Keys?.Dispose();
            Values?.Dispose();
            Keys = null;
            Values = null;
        }
    }
}
