using Alignment.Kernels;
using BenchmarkDotNet.Attributes;
using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Benchmarks.Kernels;

/// <summary>
/// Forward and backward of per-token log-probabilities from the last hidden states, three ways: the textbook
/// <c>matmul → log_softmax → gather</c>, the same logits through <see cref="TokenLogProbs.FromLogits"/>, and
/// <see cref="TokenLogProbs.FromHidden"/>, which never materialises the logits — and the last two again with the lm_head
/// frozen (LoRA), where only the hidden states need a gradient.
/// </summary>
public class TokenLogProbsBenchmarks
{
    /// <summary>A problem size: tokens in the batch, vocabulary, hidden width.</summary>
    public sealed record Size(int Tokens, int Vocab, int Hidden)
    {
        public override string ToString() => $"{Tokens}x{Vocab}x{Hidden}";
    }

    public static IEnumerable<Size> Sizes => [new(2048, 32_000, 512), new(2048, 128_256, 512)];

    [ParamsSource(nameof(Sizes))]
    public Size Shape { get; set; } = new(2048, 32_000, 512);

    const int Sequences = 4;
    Tensor _hidden = null!, _weight = null!, _targets = null!, _upstream = null!;

    void Setup()
    {
        torch.manual_seed(0);
        long time = Shape.Tokens / Sequences;
        _hidden = randn(Sequences, time, Shape.Hidden).requires_grad_(true);
        _weight = randn(Shape.Vocab, Shape.Hidden).div(Math.Sqrt(Shape.Hidden)).requires_grad_(true);
        _targets = randint(0, Shape.Vocab, [Sequences, time], dtype: ScalarType.Int64);
        _upstream = randn(Sequences, time); // stands in for the loss's per-token gradient
    }

    // Each case measures its own peak once, after setup and before BenchmarkDotNet times it.
    [GlobalSetup(Target = nameof(Naive))]
    public void SetupNaive() => SetupAndMeasure(nameof(Naive), Naive);

    [GlobalSetup(Target = nameof(FromLogits))]
    public void SetupFromLogits() => SetupAndMeasure(nameof(FromLogits), FromLogits);

    [GlobalSetup(Target = nameof(FromHidden))]
    public void SetupFromHidden() => SetupAndMeasure(nameof(FromHidden), FromHidden);

    [GlobalSetup(Target = nameof(NaiveFrozenHead))]
    public void SetupNaiveFrozenHead() => SetupAndMeasure(nameof(NaiveFrozenHead), NaiveFrozenHead);

    [GlobalSetup(Target = nameof(FromHiddenFrozenHead))]
    public void SetupFromHiddenFrozenHead() => SetupAndMeasure(nameof(FromHiddenFrozenHead), FromHiddenFrozenHead);

    void SetupAndMeasure(string method, Action operation)
    {
        Setup();
        PeakNativeMemory.Record(PeakNativeMemory.Key(method, [(nameof(Shape), Shape)]), operation);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _hidden.Dispose();
        _weight.Dispose();
        _targets.Dispose();
        _upstream.Dispose();
    }

    [Benchmark(Baseline = true)]
    public void Naive()
    {
        using var scope = NewDisposeScope();
        Tensor logits = _hidden.matmul(_weight.t());                                   // [B, T, V]
        Tensor logProbs = logits.log_softmax(-1).gather(-1, _targets.unsqueeze(-1)).squeeze(-1);
        Backward(logProbs);
    }

    [Benchmark]
    public void FromLogits()
    {
        using var scope = NewDisposeScope();
        Tensor logits = _hidden.matmul(_weight.t());                                   // [B, T, V]
        Backward(TokenLogProbs.FromLogits(logits, _targets));
    }

    [Benchmark]
    public void FromHidden()
    {
        using var scope = NewDisposeScope();
        Backward(TokenLogProbs.FromHidden(_hidden, _weight, _targets));
    }

    [Benchmark]
    public void NaiveFrozenHead()
    {
        using var scope = NewDisposeScope();
        Tensor logits = _hidden.matmul(_weight.detach().t());
        Backward(logits.log_softmax(-1).gather(-1, _targets.unsqueeze(-1)).squeeze(-1), frozenHead: true);
    }

    [Benchmark]
    public void FromHiddenFrozenHead()
    {
        using var scope = NewDisposeScope();
        Backward(TokenLogProbs.FromHidden(_hidden, _weight.detach(), _targets), frozenHead: true);
    }

    /// <summary>Gradients of hidden and weight (or hidden only), returned (not accumulated into .grad) and freed with the scope.</summary>
    void Backward(Tensor logProbs, bool frozenHead = false)
    {
        Tensor objective = logProbs.mul(_upstream).sum();
        torch.autograd.grad([objective], frozenHead ? [_hidden] : [_hidden, _weight]);
    }
}
