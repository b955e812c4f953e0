using Alignment.Kernels;
using BenchmarkDotNet.Attributes;
using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Benchmarks.Kernels;

/// <summary>
/// Forward and backward of per-token log-probabilities from the last hidden states, three ways: the textbook
/// <c>matmul → log_softmax → gather</c>, the same logits through <see cref="TokenLogProbs.FromLogits"/>, and
/// <see cref="TokenLogProbs.FromHidden"/>, which never materialises the logits — and the last two again with the lm_head
/// frozen (LoRA), where only the hidden states need a gradient. The <c>…Dpo</c> cases take the same tokens as 4 pairs
/// × 256 tokens through a DPO sigmoid loss: naive, <see cref="TokenLogProbs.FromHidden"/> (logits made again in backward),
/// and <see cref="FusedTokenLoss"/> (the loss's gradients formed pair by pair in the forward pass).
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

    const int Sequences = 4, Pairs = 4;
    const double Beta = 0.1;
    Tensor _hidden = null!, _weight = null!, _targets = null!, _upstream = null!, _reference = null!;

    void Setup()
    {
        torch.manual_seed(0);
        long time = Shape.Tokens / Sequences;
        _hidden = randn(Sequences, time, Shape.Hidden).requires_grad_(true);
        _weight = randn(Shape.Vocab, Shape.Hidden).div(Math.Sqrt(Shape.Hidden)).requires_grad_(true);
        _targets = randint(0, Shape.Vocab, [Sequences, time], dtype: ScalarType.Int64);
        _upstream = randn(Sequences, time); // stands in for the loss's per-token gradient
        _reference = randn(2 * Pairs).mul(10).sub(Shape.Tokens / (2.0 * Pairs) * Math.Log(Shape.Vocab)); // reference sums near the policy's
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

    [GlobalSetup(Target = nameof(NaiveDpo))]
    public void SetupNaiveDpo() => SetupAndMeasure(nameof(NaiveDpo), NaiveDpo);

    [GlobalSetup(Target = nameof(FromHiddenDpo))]
    public void SetupFromHiddenDpo() => SetupAndMeasure(nameof(FromHiddenDpo), FromHiddenDpo);

    [GlobalSetup(Target = nameof(FusedDpo))]
    public void SetupFusedDpo() => SetupAndMeasure(nameof(FusedDpo), FusedDpo);

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
        _reference.Dispose();
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

    [Benchmark]
    public void NaiveDpo()
    {
        using var scope = NewDisposeScope();
        Tensor logits = PairHidden().matmul(_weight.t());                              // [2P, T, V]
        Tensor perToken = logits.log_softmax(-1).gather(-1, PairTargets().unsqueeze(-1)).squeeze(-1);
        torch.autograd.grad([Dpo(perToken)], [_hidden, _weight]);
    }

    [Benchmark]
    public void FromHiddenDpo()
    {
        using var scope = NewDisposeScope();
        torch.autograd.grad([Dpo(TokenLogProbs.FromHidden(PairHidden(), _weight, PairTargets()))], [_hidden, _weight]);
    }

    [Benchmark]
    public void FusedDpo()
    {
        using var scope = NewDisposeScope();
        var (perToken, gradient) = FusedTokenLoss.Run(PairHidden(), _weight, PairTargets(), FusedTokenLoss.Pairs(Pairs), (_, values) =>
        {
            using var grad = enable_grad();
            Tensor leaf = values.requires_grad_(true);
            return torch.autograd.grad([Dpo(leaf)], [leaf])[0];
        });
        torch.autograd.grad([Dpo(perToken).add(gradient)], [_hidden, _weight]);
    }

    /// <summary>The hidden states as 2·<see cref="Pairs"/> sequences (chosen rows first), a view that back-propagates into them.</summary>
    Tensor PairHidden() => _hidden.reshape(2 * Pairs, Shape.Tokens / (2 * Pairs), Shape.Hidden);

    Tensor PairTargets() => _targets.reshape(2 * Pairs, Shape.Tokens / (2 * Pairs));

    /// <summary>Mean over pairs of −logσ(β·((c − c_ref) − (r − r_ref))) from per-token log-probabilities [2P, T].</summary>
    Tensor Dpo(Tensor perToken)
    {
        Tensor ratio = perToken.sum(1).sub(_reference);
        Tensor delta = ratio.narrow(0, 0, Pairs).sub(ratio.narrow(0, Pairs, Pairs));
        return nn.functional.logsigmoid(delta.mul(Beta)).neg().mean();
    }

    /// <summary>Gradients of hidden and weight (or hidden only), returned (not accumulated into .grad) and freed with the scope.</summary>
    void Backward(Tensor logProbs, bool frozenHead = false)
    {
        Tensor objective = logProbs.mul(_upstream).sum();
        torch.autograd.grad([objective], frozenHead ? [_hidden] : [_hidden, _weight]);
    }
}
