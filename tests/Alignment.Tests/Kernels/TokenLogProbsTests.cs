using Alignment.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Tests.Kernels;

public sealed class TokenLogProbsTests
{
    const long Ignore = TokenLogProbs.IgnoreIndex;

    /// <summary>The textbook path, in the logits' own dtype: a full log_softmax, then gather, then zero the skipped positions.</summary>
    static Tensor NaiveFromLogits(Tensor logits, Tensor targets, Tensor valid)
    {
        Tensor picked = logits.log_softmax(-1).gather(-1, targets.where(valid, 0L).unsqueeze(-1)).squeeze(-1);
        return picked.where(valid, 0.0);
    }

    sealed record Case(Tensor Targets, Tensor Mask, Tensor Valid);

    /// <summary>Random targets with right padding (mask 0) and a few ignore-index positions inside the sequences.</summary>
    static Case RandomCase(Generator generator, long batch, long time, long vocab)
    {
        Tensor targets = randint(0, vocab, [batch, time], dtype: ScalarType.Int64, generator: generator);
        Tensor lengths = randint(1, time + 1, [batch, 1], dtype: ScalarType.Int64, generator: generator);
        Tensor mask = arange(time, dtype: ScalarType.Int64).unsqueeze(0).lt(lengths); // [B, T]
        Tensor ignored = rand([batch, time], generator: generator).lt(0.15);
        targets = targets.masked_fill(ignored, Ignore);
        targets = targets.masked_fill(mask.logical_not(), 999_999); // garbage ids where the mask is off
        Tensor valid = mask.logical_and(ignored.logical_not());
        return new Case(targets, mask, valid);
    }

    static readonly (long Batch, long Time, long Vocab, int Chunk)[] LogitShapes =
    [
        (2, 5, 7, 3),    // chunk does not divide the 10 tokens
        (2, 5, 7, 5),    // chunk divides them
        (3, 4, 1, 2),    // vocabulary of one
        (1, 9, 31, 64),  // chunk larger than the token count
        (2, 6, 50, TokenLogProbs.AutoChunkSize),
    ];

    static readonly (long Batch, long Time, long Width, long Vocab, int Chunk)[] HiddenShapes =
    [
        (2, 5, 4, 7, 3),
        (2, 5, 4, 7, 4),
        (3, 4, 6, 1, 2),
        (1, 9, 8, 31, 64),
        (2, 6, 16, 50, TokenLogProbs.AutoChunkSize),
    ];

    /// <summary>float64 must agree to rounding; float32 to the 1e-6 the kernels promise.</summary>
    static readonly (ScalarType Dtype, double Tolerance)[] Precisions = [(ScalarType.Float64, 1e-12), (ScalarType.Float32, 1e-6)];

    public static TheoryData<ScalarType, double, long, long, long, int> LogitCases()
    {
        var data = new TheoryData<ScalarType, double, long, long, long, int>();
        foreach (var (dtype, tolerance) in Precisions)
            foreach (var (b, t, v, chunk) in LogitShapes)
                data.Add(dtype, tolerance, b, t, v, chunk);
        return data;
    }

    /// <summary>Each precision and shape with a trainable lm_head and with a frozen one (LoRA), which takes the kernel's other backward.</summary>
    public static TheoryData<ScalarType, double, long, long, long, long, int, bool> HiddenCases()
    {
        var data = new TheoryData<ScalarType, double, long, long, long, long, int, bool>();
        foreach (var (dtype, tolerance) in Precisions)
            foreach (var (b, t, h, v, chunk) in HiddenShapes)
                foreach (bool frozenHead in new[] { false, true })
                    data.Add(dtype, tolerance, b, t, h, v, chunk, frozenHead);
        return data;
    }

    [Theory]
    [MemberData(nameof(LogitCases))]
    public void FromLogits_matches_log_softmax_gather_in_value_and_gradient(ScalarType dtype, double tolerance,
        long batch, long time, long vocab, int chunk)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(17).manual_seed(17);
        var c = RandomCase(generator, batch, time, vocab);
        Tensor raw = randn([batch, time, vocab], dtype, generator: generator).mul(3);
        Tensor weights = randn([batch, time], dtype, generator: generator);

        Tensor fast = raw.detach().requires_grad_(true);
        Tensor actual = TokenLogProbs.FromLogits(fast, c.Targets, c.Mask, chunkSize: chunk);
        actual.mul(weights).sum().backward();

        Tensor slow = raw.detach().requires_grad_(true);
        Tensor expected = NaiveFromLogits(slow, c.Targets, c.Valid);
        expected.mul(weights).sum().backward();

        Assert.Equal(dtype, actual.dtype);
        Assert.True(actual.allclose(expected, rtol: 0, atol: tolerance), "values differ");
        Assert.True(fast.grad!.allclose(slow.grad!, rtol: 0, atol: tolerance), "gradients differ");
        Assert.Equal(0.0, actual.where(c.Valid.logical_not(), 0.0).abs().sum().to_type(ScalarType.Float64).item<double>());
    }

    [Theory]
    [MemberData(nameof(HiddenCases))]
    public void FromHidden_matches_projection_then_log_softmax_gather(ScalarType dtype, double tolerance,
        long batch, long time, long width, long vocab, int chunk, bool frozenHead)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(23).manual_seed(23);
        var c = RandomCase(generator, batch, time, vocab);
        Tensor rawHidden = randn([batch, time, width], dtype, generator: generator);
        Tensor rawWeight = randn([vocab, width], dtype, generator: generator).div(Math.Sqrt(width));
        Tensor weights = randn([batch, time], dtype, generator: generator);

        // A frozen head makes the kernel form the hidden states' gradient in the forward pass instead of recomputing it.
        Tensor hidden = rawHidden.detach().requires_grad_(true);
        Tensor weight = rawWeight.detach().requires_grad_(!frozenHead);
        Tensor actual = TokenLogProbs.FromHidden(hidden, weight, c.Targets, c.Mask, chunk);
        actual.mul(weights).sum().backward();

        Tensor hidden2 = rawHidden.detach().requires_grad_(true);
        Tensor weight2 = rawWeight.detach().requires_grad_(!frozenHead);
        Tensor logits = hidden2.reshape(-1, width).mm(weight2.t()).reshape(batch, time, vocab);
        Tensor expected = NaiveFromLogits(logits, c.Targets, c.Valid);
        expected.mul(weights).sum().backward();

        Assert.True(actual.allclose(expected, rtol: 0, atol: tolerance), "values differ");
        Assert.True(hidden.grad!.allclose(hidden2.grad!, rtol: 0, atol: tolerance), "hidden gradients differ");
        if (frozenHead)
            Assert.Null(weight.grad);
        else
            Assert.True(weight.grad!.allclose(weight2.grad!, rtol: 0, atol: tolerance), "weight gradients differ");
    }

    [Fact]
    public void FromHidden_gradient_matches_central_finite_differences()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(3).manual_seed(3);
        long batch = 2, time = 3, width = 4, vocab = 5;
        Tensor targets = tensor(new long[] { 1, 4, Ignore, 0, 2, 3 }).reshape(batch, time);
        Tensor mask = tensor(new long[] { 1, 1, 1, 1, 1, 0 }).reshape(batch, time);
        Tensor hidden = randn([batch, time, width], ScalarType.Float64, generator: generator).requires_grad_(true);
        Tensor weight = randn([vocab, width], ScalarType.Float64, generator: generator).requires_grad_(true);

        double Objective() => TokenLogProbs.FromHidden(hidden, weight, targets, mask, chunkSize: 2).sum().item<double>();
        TokenLogProbs.FromHidden(hidden, weight, targets, mask, chunkSize: 2).sum().backward();

        const double h = 1e-6;
        foreach (Tensor parameter in new[] { hidden, weight })
        {
            Tensor flat = parameter.detach().view(-1);
            Tensor analytic = parameter.grad!.view(-1);
            for (long i = 0; i < flat.shape[0]; i++)
            {
                double original = flat[i].item<double>();
                flat[i] = original + h;
                double plus = Objective();
                flat[i] = original - h;
                double minus = Objective();
                flat[i] = original;
                Assert.Equal((plus - minus) / (2 * h), analytic[i].item<double>(), 1e-7);
            }
        }
    }

    [Fact]
    public void Bfloat16_inputs_accumulate_in_float32_and_stay_within_bf16_tolerance()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(11).manual_seed(11);
        long batch = 2, time = 6, width = 16, vocab = 40;
        var c = RandomCase(generator, batch, time, vocab);
        Tensor rawHidden = randn([batch, time, width], generator: generator).to_type(ScalarType.BFloat16);
        Tensor rawWeight = randn([vocab, width], generator: generator).div(4).to_type(ScalarType.BFloat16);
        Tensor weights = randn([batch, time], generator: generator);

        // Reference: float64 on the same bf16-rounded values.
        Tensor hidden64 = rawHidden.to_type(ScalarType.Float64).requires_grad_(true);
        Tensor weight64 = rawWeight.to_type(ScalarType.Float64).requires_grad_(true);
        Tensor logits64 = einsum("bth,vh->btv", hidden64, weight64);
        Tensor expected = NaiveFromLogits(logits64, c.Targets, c.Valid);
        expected.mul(weights.to_type(ScalarType.Float64)).sum().backward();

        Tensor logits16 = logits64.detach().to_type(ScalarType.BFloat16).requires_grad_(true);
        Tensor fromLogits = TokenLogProbs.FromLogits(logits16, c.Targets, c.Mask, chunkSize: 5);
        fromLogits.mul(weights).sum().backward();
        Assert.Equal(ScalarType.Float32, fromLogits.dtype);
        Assert.Equal(ScalarType.BFloat16, logits16.grad!.dtype);
        // Logits rounded to bf16 (8 bits of mantissa) move each log-prob by at most about |logit| * 2^-8.
        Assert.True(fromLogits.to_type(ScalarType.Float64).allclose(expected, rtol: 0, atol: 0.05), "FromLogits values");

        Tensor hidden = rawHidden.detach().requires_grad_(true);
        Tensor weight = rawWeight.detach().requires_grad_(true);
        Tensor fromHidden = TokenLogProbs.FromHidden(hidden, weight, c.Targets, c.Mask, chunkSize: 5);
        fromHidden.mul(weights).sum().backward();
        Assert.Equal(ScalarType.BFloat16, hidden.grad!.dtype);
        Assert.Equal(ScalarType.BFloat16, weight.grad!.dtype);
        Assert.True(fromHidden.to_type(ScalarType.Float64).allclose(expected, rtol: 0, atol: 0.05), "FromHidden values");
        Assert.True(hidden.grad!.to_type(ScalarType.Float64).allclose(hidden64.grad!, rtol: 0.02, atol: 0.02), "hidden gradients");
        Assert.True(weight.grad!.to_type(ScalarType.Float64).allclose(weight64.grad!, rtol: 0.02, atol: 0.02), "weight gradients");
    }

    [Fact]
    public void Skipped_positions_yield_zero_and_no_gradient_even_with_non_finite_logits()
    {
        using var scope = NewDisposeScope();
        Tensor logits = tensor(new double[] { 0, 1, 2, double.PositiveInfinity, double.NaN, 0 }).reshape(1, 2, 3).requires_grad_(true);
        Tensor targets = tensor(new long[] { 2, 1 }).reshape(1, 2);
        Tensor mask = tensor(new[] { true, false }).reshape(1, 2);

        Tensor result = TokenLogProbs.FromLogits(logits, targets, mask);
        result.sum().backward();

        double expected = 2 - Math.Log(1 + Math.E + Math.E * Math.E); // log softmax([0,1,2])[2]
        Assert.Equal(expected, result[0, 0].item<double>(), 12);
        Assert.Equal(0.0, result[0, 1].item<double>());
        double[] grad = logits.grad!.data<double>().ToArray();
        Assert.All(grad[3..], g => Assert.Equal(0.0, g));
    }

    [Fact]
    public void Works_without_gradients_under_no_grad()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        Tensor hidden = ones(1, 2, 3, requires_grad: true);
        Tensor weight = ones(4, 3, requires_grad: true);
        Tensor result = TokenLogProbs.FromHidden(hidden, weight, tensor(new long[] { 0, 3 }).reshape(1, 2));
        Assert.False(result.requires_grad);
        Assert.True(result.allclose(full(1, 2, -Math.Log(4), ScalarType.Float32), rtol: 0, atol: 1e-6));
    }

    [Fact]
    public void Out_of_vocabulary_target_is_named_with_its_position()
    {
        using var scope = NewDisposeScope();
        Tensor logits = zeros(2, 3, 5);
        Tensor targets = tensor(new long[] { 0, 1, 2, 3, 7, 4 }).reshape(2, 3);
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => TokenLogProbs.FromLogits(logits, targets));
        Assert.Contains("targets[1, 1] = 7", error.Message);
        Assert.Contains("[0, 5)", error.Message);
    }

    [Fact]
    public void Mismatched_shapes_and_dtypes_are_rejected_with_the_shapes()
    {
        using var scope = NewDisposeScope();
        var shape = Assert.Throws<ArgumentException>(() => TokenLogProbs.FromLogits(zeros(2, 3, 5), zeros(2, 4, ScalarType.Int64)));
        Assert.Contains("[2, 4]", shape.Message);
        Assert.Contains("[2, 3]", shape.Message);

        var width = Assert.Throws<ArgumentException>(() =>
            TokenLogProbs.FromHidden(zeros(2, 3, 4), zeros(5, 6), zeros(2, 3, ScalarType.Int64)));
        Assert.Contains("lmHeadWeight", width.Message);

        var dtype = Assert.Throws<ArgumentException>(() =>
            TokenLogProbs.FromHidden(zeros(2, 3, 4), zeros(5, 4, ScalarType.Float64), zeros(2, 3, ScalarType.Int64)));
        Assert.Contains("Float64", dtype.Message);

        Assert.Throws<ArgumentException>(() => TokenLogProbs.FromLogits(zeros(2, 3, 5), zeros(2, 3)));
        Assert.Throws<ArgumentOutOfRangeException>(() => TokenLogProbs.FromLogits(zeros(2, 3, 5), zeros(2, 3, ScalarType.Int64), chunkSize: -1));
    }

    [Fact]
    public void Sequence_sums_means_and_counts_follow_the_mask()
    {
        using var scope = NewDisposeScope();
        Tensor logProbs = tensor(new float[] { -1, -2, -3, -4, -0.5f, -1.5f, 9, 9 }).reshape(2, 4);
        Tensor mask = tensor(new long[] { 1, 1, 1, 0, 1, 1, 0, 0 }).reshape(2, 4);
        Tensor empty = tensor(new long[] { 0, 0, 0, 0 }).reshape(1, 4);

        Assert.Equal(new[] { -6f, -2f }, TokenLogProbs.SequenceSum(logProbs, mask).data<float>().ToArray());
        Assert.Equal(new long[] { 3, 2 }, TokenLogProbs.TokenCounts(mask).data<long>().ToArray());
        Assert.Equal(new[] { -2f, -1f }, TokenLogProbs.SequenceMean(logProbs, mask).data<float>().ToArray());
        Assert.Equal(new[] { 0f }, TokenLogProbs.SequenceMean(logProbs[..1], empty).data<float>().ToArray());
    }

    [Fact]
    public void Wpo_log_weights_are_the_mean_of_log_p_minus_log_sum_of_squared_probabilities()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(41).manual_seed(41);
        long batch = 3, time = 5, width = 6, vocab = 11;
        var c = RandomCase(generator, batch, time, vocab);
        Tensor hidden = randn([batch, time, width], ScalarType.Float64, generator: generator);
        Tensor weight = randn([vocab, width], ScalarType.Float64, generator: generator);
        Tensor logits = einsum("bth,vh->btv", hidden, weight);

        // Naive: probabilities in full, then the WPO formula token by token.
        Tensor probabilities = logits.softmax(-1);
        Tensor logP = probabilities.gather(-1, c.Targets.where(c.Valid, 0L).unsqueeze(-1)).squeeze(-1).log();
        Tensor logSquaredMass = probabilities.square().sum(-1).log();
        Tensor perToken = logP.sub(logSquaredMass).where(c.Valid, 0.0);
        Tensor expected = perToken.sum(1).div(c.Valid.sum(1).clamp_min(1));

        Assert.True(TokenLogProbs.WpoLogWeights(logits, c.Targets, c.Mask, chunkSize: 4).allclose(expected, rtol: 0, atol: 1e-12));
        Assert.True(TokenLogProbs.WpoLogWeightsFromHidden(hidden, weight, c.Targets, c.Mask, chunkSize: 4).allclose(expected, rtol: 0, atol: 1e-12));
    }

    [Fact]
    public void Repeated_forward_and_backward_leave_no_live_tensors()
    {
        var generator = new Generator(1).manual_seed(1);
        Tensor hidden = randn([2, 8, 16], generator: generator).requires_grad_(true);
        Tensor weight = randn([32, 16], generator: generator).requires_grad_(true);
        Tensor targets = randint(0, 32, [2, 8], dtype: ScalarType.Int64, generator: generator);

        void Step()
        {
            using var scope = NewDisposeScope();
            TokenLogProbs.FromHidden(hidden, weight, targets, chunkSize: 3).sum().backward();
            TokenLogProbs.FromLogits(hidden.matmul(weight.t()), targets, chunkSize: 3).sum().backward();
            hidden.grad!.zero_();
            weight.grad!.zero_();
        }

        Step(); // first step creates the .grad tensors
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < 20; i++)
            Step();
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.BFloat16)]
    public void The_kernels_leave_their_inputs_as_they_were(ScalarType dtype)
    {
        // Chunks the kernels make themselves are scored in place; chunks of the caller's logits must not be.
        using var scope = NewDisposeScope();
        var generator = new Generator(4).manual_seed(4);
        Tensor logits = randn([2, 5, 9], generator: generator).to_type(dtype);
        Tensor hidden = randn([2, 5, 4], generator: generator).to_type(dtype);
        Tensor weight = randn([9, 4], generator: generator).to_type(dtype);
        Tensor targets = randint(0, 9, [2, 5], dtype: ScalarType.Int64, generator: generator);
        Tensor[] before = [logits.clone(), hidden.clone(), weight.clone()];

        TokenLogProbs.FromLogits(logits, targets, chunkSize: 3);
        TokenLogProbs.FromHidden(hidden, weight, targets, chunkSize: 3);

        Assert.True(logits.eq(before[0]).all().item<bool>());
        Assert.True(hidden.eq(before[1]).all().item<bool>());
        Assert.True(weight.eq(before[2]).all().item<bool>());
    }
}
