using LLama;
using LLama.Common;
using LLama.Native;

namespace Alignment.Tests.Export;

/// <summary>A GGUF file loaded in llama.cpp through LLamaSharp (the CPU backend): its tokenizer, its logits at every position, its greedy continuation.</summary>
internal sealed class LlamaCpp : IDisposable
{
    readonly LLamaWeights _weights;
    readonly LLamaContext _context;

    public LlamaCpp(string gguf, string? adapter = null)
    {
        // A float32 KV cache and no flash attention: llama.cpp's defaults (f16 cache) would round the keys and values.
        var parameters = new ModelParams(gguf)
        {
            ContextSize = 256, GpuLayerCount = 0, BatchSize = 256, UBatchSize = 256, Threads = 1,
            TypeK = GGMLType.GGML_TYPE_F32, TypeV = GGMLType.GGML_TYPE_F32, FlashAttention = false,
        };
        _weights = LLamaWeights.LoadFromFile(parameters);
        _context = _weights.CreateContext(parameters);
        if (adapter is not null)
        {
            LoraAdapter lora = _weights.NativeHandle.LoadLoraFromFile(adapter);
            _context.NativeHandle.SetLoraAdapters([(lora, 1f)]);
        }
    }

    /// <summary>llama.cpp's token ids of <paramref name="text"/>, special tokens parsed, no BOS added.</summary>
    public int[] Tokenize(string text) => [.. _context.Tokenize(text, false, true).Select(t => (int)t)];

    /// <summary>[position][vocab] the logits after each token of <paramref name="ids"/>, from an empty cache.</summary>
    public float[][] Logits(IReadOnlyList<int> ids)
    {
        _context.NativeHandle.MemoryClear();
        var batch = new LLamaBatch();
        for (int i = 0; i < ids.Count; i++)
            batch.Add((LLamaToken)ids[i], i, LLamaSeqId.Zero, true);
        DecodeResult result = _context.NativeHandle.Decode(batch);
        if (result != DecodeResult.Ok)
            throw new InvalidOperationException($"llama_decode: {result}");
        return [.. Enumerable.Range(0, ids.Count).Select(i => _context.NativeHandle.GetLogitsIth(i).ToArray())];
    }

    /// <summary><paramref name="count"/> greedy tokens after <paramref name="ids"/> (argmax of the logits, recomputed over the whole sequence).</summary>
    public int[] Greedy(IReadOnlyList<int> ids, int count)
    {
        var sequence = ids.ToList();
        for (int i = 0; i < count; i++)
        {
            float[] last = Logits(sequence)[^1];
            sequence.Add(Array.IndexOf(last, last.Max()));
        }
        return [.. sequence.Skip(ids.Count)];
    }

    public void Dispose()
    {
        _context.Dispose();
        _weights.Dispose();
    }
}
