using static TorchSharp.torch;

namespace Alignment.Models;

/// <summary>
/// Keys and values of every decoder layer for the tokens seen so far, so that generation feeds only the new token.
/// A static cache (given a maximum length) allocates [B, kv heads, max length, head dim] per layer at the first forward
/// pass and writes each step's keys and values into it in place; a dynamic one grows by concatenation. The cache owns
/// its tensors (they live outside any dispose scope); dispose it when generation ends.
/// </summary>
public sealed class KvCache : IDisposable
{
    readonly Layer[] _layers;

    /// <summary>An empty dynamic cache for a model with <paramref name="layers"/> decoder layers.</summary>
    public KvCache(int layers) => _layers = Enumerable.Range(0, layers).Select(_ => new Layer(null)).ToArray();

    /// <summary>An empty static cache with room for <paramref name="maxLength"/> positions (prompt and new tokens).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxLength"/> is below 1.</exception>
    public KvCache(int layers, int maxLength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 1);
        _layers = Enumerable.Range(0, layers).Select(_ => new Layer(maxLength)).ToArray();
        MaxLength = maxLength;
    }

    /// <summary>The positions a static cache has room for; null for a dynamic cache.</summary>
    public int? MaxLength { get; }

    /// <summary>Number of positions cached.</summary>
    public long Length => _layers.Length == 0 ? 0 : _layers[0].Length;

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

    /// <summary>One layer's keys and values, [B, nKV, S, hd] (S = the capacity of a static cache, of which <see cref="Length"/> are filled).</summary>
    internal sealed class Layer(long? capacity) : IDisposable
    {
        Tensor? _keys, _values;

        public long Length { get; private set; }

        /// <summary>Appends the new positions and returns the keys and values of every cached position.</summary>
        /// <exception cref="InvalidOperationException">A static cache has no room left.</exception>
        public (Tensor Keys, Tensor Values) Append(Tensor keys, Tensor values)
        {
            long time = keys.shape[2];
            if (capacity is not { } room)
            {
                Replace(_keys is null ? keys.detach().clone() : cat([_keys, keys.detach()], 2),
                    _values is null ? values.detach().clone() : cat([_values, values.detach()], 2));
                Length += time;
                return (_keys!, _values!);
            }
            if (Length + time > room)
                throw new InvalidOperationException($"The static KV cache has room for {room} positions; {Length + time} were asked for.");
            if (_keys is null)
            {
                long[] shape = [keys.shape[0], keys.shape[1], room, keys.shape[3]];
                Replace(empty(shape, keys.dtype, keys.device), empty(shape, values.dtype, values.device));
            }
            _keys!.narrow(2, Length, time).copy_(keys);
            _values!.narrow(2, Length, time).copy_(values);
            Length += time;
            return (_keys.narrow(2, 0, Length), _values.narrow(2, 0, Length)); // views of the filled part
        }

        public void Select(Tensor rows)
        {
            if (_keys is not null)
                Replace(_keys.index_select(0, rows), _values!.index_select(0, rows));
        }

        void Replace(Tensor keys, Tensor values)
        {
            _keys?.Dispose();
            _values?.Dispose();
            _keys = keys.DetachFromDisposeScope();
            _values = values.DetachFromDisposeScope();
        }

        public void Dispose()
        {
            _keys?.Dispose();
            _values?.Dispose();
            _keys = null;
            _values = null;
        }
    }
}
