using Alignment.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Tests.Kernels;

public sealed class FusedTokenLossTests
{
    const long Ignore = TokenLogProbs.IgnoreIndex;
    const double Beta = 0.1, NllWeight = 0.5;

    /// <summary>
    /// A DPO-like loss written out here: mean over pairs of −logσ(β·((c − c_ref) − (r − r_ref))) plus a chosen NLL over the
    /// batch's chosen tokens (RPO), which couples the pairs only through the known token count.
    /// </summary>
    /// <param name="perToken">[2B, T] per-token log-probabilities, 0 where not scored.</param>
    static Tensor Loss(Tensor perToken, Tensor valid, Tensor reference)
    {
        long pairs = perToken.shape[0] / 2;
        Tensor sums = perToken.where(valid, 0.0).sum(1);
        Tensor ratio = sums.sub(reference);
        Tensor delta = ratio.narrow(0, 0, pairs).sub(ratio.narrow(0, pairs, pairs));
        Tensor preference = nn.functional.logsigmoid(delta.mul(Beta)).neg().mean();
        Tensor chosenTokens = valid.narrow(0, 0, pairs).sum().to_type(sums.dtype);
        Tensor nll = sums.narrow(0, 0, pairs).sum().neg().div(chosenTokens);
        return preference.add(nll.mul(NllWeight));
    }

    sealed record Problem(Tensor Hidden, Tensor Weight, Tensor Targets, Tensor Valid, Tensor Reference);

    /// <summary>Pairs with left- and right-padded rows and ignore-index holes; float64 throughout.</summary>
    static Problem Make(int pairs, long time, long width, long vocab, bool frozenHead)
    {
        var generator = new Generator(5).manual_seed(5);
        long rows = 2L * pairs;
        Tensor hidden = randn([rows, time, width], dtype: ScalarType.Float64, generator: generator).requires_grad_(true);
        Tensor weight = randn([vocab, width], dtype: ScalarType.Float64, generator: generator).requires_grad_(!frozenHead);
        Tensor targets = randint(0, vocab, [rows, time], dtype: ScalarType.Int64, generator: generator);
        Tensor position = arange(time, dtype: ScalarType.Int64).unsqueeze(0);
        Tensor start = randint(0, time / 2, [rows, 1], dtype: ScalarType.Int64, generator: generator);      // left padding
        Tensor end = randint(time / 2 + 1, time + 1, [rows, 1], dtype: ScalarType.Int64, generator: generator); // right padding
        Tensor valid = position.ge(start).logical_and(position.lt(end))
            .logical_and(rand([rows, time], dtype: ScalarType.Float64, generator: generator).gt(0.1));
        targets = targets.where(valid, Ignore);
        Tensor reference = randn([rows], dtype: ScalarType.Float64, generator: generator).mul(3);
        return new Problem(hidden, weight, targets, valid, reference);
    }

    /// <summary>The textbook path: full logits, log_softmax, gather, the loss, autograd.</summary>
    static (double Loss, Tensor Hidden, Tensor? Weight) Naive(Problem p)
    {
        Tensor logits = p.Hidden.matmul(p.Weight.t());
        Tensor perToken = logits.log_softmax(-1).gather(-1, p.Targets.where(p.Valid, 0L).unsqueeze(-1)).squeeze(-1).where(p.Valid, 0.0);
        Tensor loss = Loss(perToken, p.Valid, p.Reference);
        Tensor[] grads = autograd.grad([loss], p.Weight.requires_grad ? [p.Hidden, p.Weight] : [p.Hidden]).ToArray();
        return (loss.item<double>(), grads[0], p.Weight.requires_grad ? grads[1] : null);
    }

    static (double Loss, Tensor Hidden, Tensor? Weight, Tensor PerToken) Fused(Problem p, int chunk, long cache)
    {
        int pairs = (int)p.Hidden.shape[0] / 2;
        var (perToken, gradient) = FusedTokenLoss.Run(p.Hidden, p.Weight, p.Targets, FusedTokenLoss.Pairs(pairs), (_, values) =>
        {
            using var grad = enable_grad();
            Tensor leaf = values.detach().requires_grad_(true);
            return autograd.grad([Loss(leaf, p.Valid, p.Reference)], [leaf])[0];
        }, chunk, cache);
        Tensor loss = Loss(perToken, p.Valid, p.Reference).add(gradient);
        Tensor[] grads = autograd.grad([loss], p.Weight.requires_grad ? [p.Hidden, p.Weight] : [p.Hidden]).ToArray();
        return (loss.to_type(ScalarType.Float64).item<double>(), grads[0], p.Weight.requires_grad ? grads[1] : null, perToken);
    }

    public static TheoryData<int, long, int, long, bool> Cases() => new()
    {
        { 3, 7, 4, long.MaxValue, false },  // every chunk kept: three matmuls
        { 3, 7, 4, 0, false },              // nothing kept: every chunk made again
        { 2, 9, 5, 5 * 31, false },         // one chunk of each group kept, the rest made again
        { 3, 7, 64, long.MaxValue, false }, // one chunk holds a whole group
        { 3, 7, 4, long.MaxValue, true },   // frozen lm_head (LoRA): hidden states only
        { 1, 6, 3, 0, true },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Loss_value_and_gradients_equal_the_naive_path(int pairs, long time, int chunk, long cache, bool frozenHead)
    {
        using var scope = NewDisposeScope();
        Problem problem = Make(pairs, time, width: 8, vocab: 31, frozenHead);
        var naive = Naive(problem);
        var fused = Fused(problem, chunk, cache);

        Assert.Equal(naive.Loss, fused.Loss, 12);
        Assert.True(fused.Hidden.allclose(naive.Hidden, rtol: 0, atol: 1e-12), $"hidden gradients differ by {fused.Hidden.sub(naive.Hidden).abs().max().item<double>()}");
        if (!frozenHead)
            Assert.True(fused.Weight!.allclose(naive.Weight!, rtol: 0, atol: 1e-12), $"weight gradients differ by {fused.Weight!.sub(naive.Weight!).abs().max().item<double>()}");
        Tensor unscored = problem.Valid.logical_not();
        Assert.Equal(0, fused.Hidden.masked_select(unscored.unsqueeze(-1).expand_as(fused.Hidden)).abs().sum().item<double>());
        Assert.Equal(0, fused.PerToken.masked_select(unscored).abs().sum().item<double>());
    }

    [Fact]
    public void Incoming_gradient_scales_both_gradients()
    {
        using var scope = NewDisposeScope();
        Problem problem = Make(2, 6, 8, 31, frozenHead: false);
        var naive = Naive(problem);
        var (perToken, gradient) = FusedTokenLoss.Run(problem.Hidden, problem.Weight, problem.Targets, FusedTokenLoss.Pairs(2), (_, values) =>
        {
            using var grad = enable_grad();
            Tensor leaf = values.detach().requires_grad_(true);
            return autograd.grad([Loss(leaf, problem.Valid, problem.Reference)], [leaf])[0];
        });
        Tensor scaled = Loss(perToken, problem.Valid, problem.Reference).add(gradient).mul(0.25); // gradient accumulation over 4
        Tensor[] grads = autograd.grad([scaled], [problem.Hidden, problem.Weight]).ToArray();
        Assert.True(grads[0].allclose(naive.Hidden.mul(0.25), rtol: 0, atol: 1e-12));
        Assert.True(grads[1].allclose(naive.Weight!.mul(0.25), rtol: 0, atol: 1e-12));
    }

    [Fact]
    public void Float32_input_agrees_with_float64_naive_to_float_precision()
    {
        using var scope = NewDisposeScope();
        Problem exact = Make(2, 7, 8, 31, frozenHead: false);
        var naive = Naive(exact);
        var single = new Problem(exact.Hidden.detach().to_type(ScalarType.Float32).requires_grad_(true),
            exact.Weight.detach().to_type(ScalarType.Float32).requires_grad_(true), exact.Targets, exact.Valid, exact.Reference.to_type(ScalarType.Float32));
        var fused = Fused(single, 4, long.MaxValue);
        Assert.Equal(naive.Loss, fused.Loss, 5);
        Assert.Equal(ScalarType.Float32, fused.Weight!.dtype);
        Assert.True(fused.Weight!.to_type(ScalarType.Float64).allclose(naive.Weight!, rtol: 1e-4, atol: 1e-6));
        Assert.True(fused.Hidden.to_type(ScalarType.Float64).allclose(naive.Hidden, rtol: 1e-4, atol: 1e-6));
    }

    [Theory]
    [InlineData(3)]
    [InlineData(64)]
    public void A_known_gradient_mean_nll_equals_the_naive_path_in_one_pass(int chunk)
    {
        using var scope = NewDisposeScope();
        Problem p = Make(3, 7, 8, 31, frozenHead: false);
        double count = p.Valid.sum().item<long>();
        Tensor logits = p.Hidden.matmul(p.Weight.t());
        Tensor naivePerToken = logits.log_softmax(-1).gather(-1, p.Targets.where(p.Valid, 0L).unsqueeze(-1)).squeeze(-1).where(p.Valid, 0.0);
        Tensor naive = naivePerToken.sum().neg().div(count);
        Tensor[] expected = autograd.grad([naive], [p.Hidden, p.Weight]).ToArray();

        Tensor gradient = p.Valid.to_type(ScalarType.Float64).div(-count); // ∂(−Σ log p / N) / ∂ log p
        var (perToken, carrier) = FusedTokenLoss.Run(p.Hidden, p.Weight, p.Targets, gradient, chunk);
        Tensor nll = perToken.sum().neg().div(count);
        Tensor[] actual = autograd.grad([nll.add(carrier)], [p.Hidden, p.Weight]).ToArray();

        Assert.Equal(naive.item<double>(), nll.item<double>(), 12);
        Assert.True(actual[0].allclose(expected[0], rtol: 0, atol: 1e-12));
        Assert.True(actual[1].allclose(expected[1], rtol: 0, atol: 1e-12));
    }

    [Fact]
    public void Float16_gradients_of_a_small_loss_gradient_keep_their_precision()
    {
        // The loss's gradient is formed before any loss scaling. A mean NLL over 4096 tokens with a 32k vocabulary makes
        // products g · p near 2.4e-4 · 3e-5; here g = 1e-6 and p ~ 1/31 put them as far below float16's normal range
        // (6e-5), where they would lose their bits unless the kernel rescales them (without it: 6.5 % error here).
        using var scope = NewDisposeScope();
        Problem exact = Make(2, 7, 8, 31, frozenHead: false);
        Tensor upstream = full([4, 7], 1e-6, ScalarType.Float64);
        Tensor logits = exact.Hidden.matmul(exact.Weight.t());
        Tensor naive = logits.log_softmax(-1).gather(-1, exact.Targets.where(exact.Valid, 0L).unsqueeze(-1)).squeeze(-1).where(exact.Valid, 0.0);
        Tensor[] expected = autograd.grad([naive.mul(upstream).sum()], [exact.Hidden, exact.Weight]).ToArray();

        Tensor hidden = exact.Hidden.detach().to_type(ScalarType.Float16).requires_grad_(true);
        Tensor weight = exact.Weight.detach().to_type(ScalarType.Float16).requires_grad_(true);
        var (_, carrier) = FusedTokenLoss.Run(hidden, weight, exact.Targets, FusedTokenLoss.Pairs(2), (_, values) => upstream.to_type(values.dtype));
        Tensor[] actual = autograd.grad([carrier], [hidden, weight]).ToArray();

        foreach (var (got, want) in actual.Zip(expected))
        {
            Assert.Equal(ScalarType.Float16, got.dtype);
            double scale = want.abs().max().item<double>();
            double error = got.to_type(ScalarType.Float64).sub(want).abs().max().item<double>();
            Assert.True(error <= 0.01 * scale, $"error {error} against a largest gradient of {scale}");
        }
    }

    [Fact]
    public void Groups_that_overlap_or_leave_the_batch_are_named()
    {
        using var scope = NewDisposeScope();
        Problem p = Make(2, 5, 4, 11, frozenHead: false);
        Func<int, Tensor, Tensor> none = (_, values) => zeros_like(values);
        var overlap = Assert.Throws<ArgumentException>(() => FusedTokenLoss.Run(p.Hidden, p.Weight, p.Targets, [[0, 2], [2, 3]], none));
        Assert.Contains("groups[1] names sequence 2", overlap.Message);
        var outside = Assert.Throws<ArgumentException>(() => FusedTokenLoss.Run(p.Hidden, p.Weight, p.Targets, [[0, 4]], none));
        Assert.Contains("outside [0, 4)", outside.Message);
    }
}
