using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Models;

/// <summary>Refuses, before anything is allocated, a model whose parameters cannot fit in this machine's memory.</summary>
internal static class ModelMemory
{
    /// <exception cref="InvalidDataException">The parameters alone exceed the memory the runtime reports for this machine.</exception>
    public static void EnsureFits(DecoderConfig config, ScalarType dtype)
    {
        double bytes = (double)config.ParameterCount * dtype.ElementSize();
        long available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes; // physical memory, or the container's limit
        if (available > 0 && bytes > available)
            throw new InvalidDataException(
                $"The config describes a model of {config.ParameterCount:N0} parameters ({bytes / (1L << 30):F1} GiB in {dtype}), more than this " +
                $"machine's {available / (double)(1L << 30):F1} GiB of memory: check vocab_size ({config.VocabSize}), hidden_size ({config.HiddenSize}), " +
                $"intermediate_size ({config.IntermediateSize}) and num_hidden_layers ({config.NumHiddenLayers}) in config.json.");
    }
}
