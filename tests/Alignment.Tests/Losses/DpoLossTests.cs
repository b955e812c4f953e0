using Alignment.Losses;
using static Alignment.Tests.Losses.LossTestKit;
using static TorchSharp.torch;

namespace Alignment.Tests.Losses;

public sealed class DpoLossTests
{
    /// <summary>Each loss written out from its paper / TRL formula, one pair at a time, then averaged.</summary>
    static double Expected(string type, Pairs p, double beta, double eps, double tau = 0.05)
    {
        int n = p.Count;
        double[] c = Enumerable.Range(0, n).Select(i => p.Chosen[i] - p.RefChosen[i]).ToArray();
        double[] r = Enumerable.Range(0, n).Select(i => p.Rejected[i] - p.RefRejected[i]).ToArray();
        double[] aotPolicy = Enumerable.Range(0, n).Select(i => p.Chosen[i] - p.Rejected[i]).Order().ToArray();
        double[] aotReference = Enumerable.Range(0, n).Select(i => p.RefChosen[i] - p.RefRejected[i]).Order().ToArray();
        double[] sortedC = c.Order().ToArray(), sortedR = r.Order().ToArray();
        double nll = -p.Chosen.Sum() / p.ChosenCount.Sum();

        double Smoothed(double z) => -(1 - eps) * LogSigmoid(z) - eps * LogSigmoid(-z);
        double PerPair(int i)
        {
            double d = c[i] - r[i];
            switch (type)
            {
                case "sigmoid": return Smoothed(beta * d);
                case "robust": return (-(1 - eps) * LogSigmoid(beta * d) + eps * LogSigmoid(-beta * d)) / (1 - 2 * eps);
                case "hinge": return Math.Max(0, 1 - beta * d);
                case "ipo":
                    double avg = c[i] / p.ChosenCount[i] - r[i] / p.RejectedCount[i];
                    return Math.Pow(avg - 1 / (2 * beta), 2);
                case "exo_pair":
                    return Sigmoid(beta * d) * (LogSigmoid(beta * d) - Math.Log(1 - eps)) + Sigmoid(-beta * d) * (LogSigmoid(-beta * d) - Math.Log(eps));
                case "nca_pair": return -LogSigmoid(beta * c[i]) - 0.5 * LogSigmoid(-beta * c[i]) - 0.5 * LogSigmoid(-beta * r[i]);
                case "sppo_hard": return Math.Pow(c[i] - 0.5 / beta, 2) + Math.Pow(r[i] + 0.5 / beta, 2);
                case "apo_zero": return 1 - Sigmoid(beta * c[i]) + Sigmoid(beta * r[i]);
                case "apo_down": return Sigmoid(beta * c[i]) + 1 - Sigmoid(beta * d);
                case "bco_pair": return -LogSigmoid(beta * c[i]) - LogSigmoid(-beta * r[i]);   // TRL 1.x: no running mean
                case "aot": return Smoothed(beta * (aotPolicy[i] - aotReference[i]));
                case "aot_unpaired": return Smoothed(beta * (sortedC[i] - sortedR[i]));
                case "discopop":
                    double z = beta * d;
                    return -LogSigmoid(z) * (1 - Sigmoid(z / tau)) + Math.Exp(-z) * Sigmoid(z / tau);
                case "sigmoid_norm": return -LogSigmoid(beta * (c[i] / p.ChosenCount[i] - r[i] / p.RejectedCount[i]));
                case "sft": return nll;
                default: throw new ArgumentException(type);
            }
        }
        return Enumerable.Range(0, n).Select(PerPair).Average();
    }

    public static TheoryData<string, double> TypesAndSmoothing()
    {
        var data = new TheoryData<string, double>();
        foreach (string type in DpoLoss.Types)
        {
            if (type != "exo_pair")   // exo_pair refuses ε = 0 (its loss would be +∞)
                data.Add(type, 0.0);
            data.Add(type, 0.1);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(TypesAndSmoothing))]
    public void Loss_equals_its_formula_on_hand_picked_pairs(string type, double smoothing)
    {
        using var scope = NewDisposeScope();
        var loss = new DpoLoss(type, new PreferenceLossOptions { Beta = 0.3, LabelSmoothing = smoothing });
        double actual = Value(loss.Compute(Sample.Forward()).Loss);
        Assert.Equal(Expected(type, Sample, 0.3, smoothing), actual, 10);
    }

    [Theory]
    [MemberData(nameof(TypesAndSmoothing))]
    public void Gradient_matches_finite_differences(string type, double smoothing)
    {
        using var scope = NewDisposeScope();
        var options = new PreferenceLossOptions { Beta = 0.3, LabelSmoothing = smoothing };
        AssertGradientMatchesFiniteDifferences(Sample, forward => new DpoLoss(type, options).Compute(forward).Loss);
    }

    [Fact]
    public void Sigmoid_loss_is_log2_when_policy_equals_reference()
    {
        using var scope = NewDisposeScope();
        var pairs = Sample with { RefChosen = Sample.Chosen, RefRejected = Sample.Rejected };
        Assert.Equal(Math.Log(2), Value(PreferenceLosses.Dpo(beta: 0.5).Compute(pairs.Forward()).Loss), 12);
    }

    [Fact]
    public void Conservative_dpo_with_zero_smoothing_equals_dpo()
    {
        using var scope = NewDisposeScope();
        double cdpo = Value(new DpoLoss("sigmoid", new() { Beta = 0.3, LabelSmoothing = 0 }).Compute(Sample.Forward()).Loss);
        double dpo = Enumerable.Range(0, Sample.Count).Select(i =>
            -LogSigmoid(0.3 * ((Sample.Chosen[i] - Sample.Rejected[i]) - (Sample.RefChosen[i] - Sample.RefRejected[i])))).Average();
        Assert.Equal(dpo, cdpo, 12);
    }

    [Fact]
    public void Robust_loss_is_unbiased_under_label_flips_in_expectation()
    {
        // Flipping each label with probability ε: E[robust loss] = (1−ε)·L(Δ) + ε·L(−Δ) must equal the clean DPO loss.
        using var scope = NewDisposeScope();
        const double eps = 0.2, beta = 0.3;
        var flipped = Sample with { Chosen = Sample.Rejected, Rejected = Sample.Chosen, RefChosen = Sample.RefRejected, RefRejected = Sample.RefChosen,
            ChosenCount = Sample.RejectedCount, RejectedCount = Sample.ChosenCount };
        var robust = new DpoLoss("robust", new() { Beta = beta, LabelSmoothing = eps });
        double expectation = (1 - eps) * Value(robust.Compute(Sample.Forward()).Loss) + eps * Value(robust.Compute(flipped.Forward()).Loss);
        double clean = Value(new DpoLoss("sigmoid", new() { Beta = beta }).Compute(Sample.Forward()).Loss);
        Assert.Equal(clean, expectation, 12);
    }

    [Theory]
    [MemberData(nameof(TypesAndSmoothing))]
    public void Extreme_margins_and_near_zero_log_probs_give_finite_loss_and_gradient(string type, double smoothing)
    {
        using var scope = NewDisposeScope();
        var extreme = new Pairs(
            Chosen: [-1e-9, -1e4, -1e-12, -3],
            Rejected: [-1e4, -1e-9, -2, -1e-12],
            RefChosen: [-5e3, -1e-9, -1e4, -1e-9],
            RefRejected: [-1e-9, -1e4, -1e-9, -1e4],
            ChosenCount: [1, 3, 1, 2],
            RejectedCount: [4, 1, 2, 1]);
        foreach (FDivergence divergence in Enum.GetValues<FDivergence>())
        {
            Tensor chosen = Vector(extreme.Chosen).requires_grad_(true);
            var loss = new DpoLoss(type, new() { Beta = 1.0, LabelSmoothing = smoothing, FDivergence = divergence });
            Tensor value = loss.Compute(extreme.Forward(chosen)).Loss;
            value.backward();
            Assert.True(double.IsFinite(Value(value)), $"{type}/{divergence}: loss {Value(value)}");
            Assert.True(chosen.grad!.isfinite().all().item<bool>(), $"{type}/{divergence}: gradient not finite");
        }
    }

    [Theory]
    [InlineData(FDivergence.ForwardKl)]
    [InlineData(FDivergence.JensenShannon)]
    [InlineData(FDivergence.AlphaDivergence)]
    public void F_divergences_follow_their_derivative_formulas(FDivergence divergence)
    {
        // f-DPO (Wang et al. 2023): the score of a completion is f'(u) with u = π/π_ref, up to a constant.
        using var scope = NewDisposeScope();
        const double beta = 0.3, alpha = 0.4;
        double Score(double logRatio) => divergence switch
        {
            FDivergence.ForwardKl => -1 / Math.Exp(logRatio),                                     // f(u) = −log u
            FDivergence.JensenShannon => Math.Log(2 * Math.Exp(logRatio) / (1 + Math.Exp(logRatio))), // JS
            _ => (1 - Math.Pow(Math.Exp(logRatio), -alpha)) / alpha,                              // α-divergence
        };
        double expected = Enumerable.Range(0, Sample.Count).Select(i =>
            -LogSigmoid(beta * (Score(Sample.Chosen[i] - Sample.RefChosen[i]) - Score(Sample.Rejected[i] - Sample.RefRejected[i])))).Average();
        var loss = new DpoLoss("sigmoid", new() { Beta = beta, FDivergence = divergence, AlphaDivergenceCoef = alpha });
        Assert.Equal(expected, Value(loss.Compute(Sample.Forward()).Loss), 10);
    }

    [Fact]
    public void Wpo_weights_scale_each_pair_and_carry_no_gradient()
    {
        using var scope = NewDisposeScope();
        double[] wc = [-0.5, -2.0, 0.3, -0.1], wr = [-0.25, -1.0, 0.4, -3.0];
        Tensor chosen = Vector(Sample.Chosen).requires_grad_(true);
        var forward = new PreferenceForward
        {
            Chosen = new CompletionLogProbs(chosen, Vector(Sample.ChosenCount), Vector(wc).requires_grad_(true)),
            Rejected = new CompletionLogProbs(Vector(Sample.Rejected), Vector(Sample.RejectedCount), Vector(wr)),
            ReferenceChosen = new CompletionLogProbs(Vector(Sample.RefChosen), Vector(Sample.ChosenCount)),
            ReferenceRejected = new CompletionLogProbs(Vector(Sample.RefRejected), Vector(Sample.RejectedCount)),
        };
        var loss = new DpoLoss("sigmoid", new() { Beta = 0.3, UseWeighting = true });
        Tensor value = loss.Compute(forward).Loss;

        double expected = Enumerable.Range(0, Sample.Count).Select(i =>
            Math.Min(1, Math.Exp(wc[i] + wr[i])) *
            -LogSigmoid(0.3 * ((Sample.Chosen[i] - Sample.RefChosen[i]) - (Sample.Rejected[i] - Sample.RefRejected[i])))).Average();
        Assert.Equal(expected, Value(value), 12);
        value.backward();
        Assert.Null(forward.Chosen.WpoLogWeights!.grad);
        Assert.True(loss.Requirements.WpoWeights);
    }

    [Fact]
    public void Ld_dpo_down_weights_the_tokens_past_the_shorter_completion()
    {
        using var scope = NewDisposeScope();
        const double alpha = 0.25, beta = 0.5;
        // Chosen has 3 tokens, rejected 2 (right-padded), so the shared length is 2 for pair 0.
        Tensor chosenTokens = Vector(-1, -2, -3, 0, -0.5, -0.25, 0, 0).reshape(2, 4);
        Tensor chosenMask = tensor(new[] { true, true, true, false, true, true, false, false }).reshape(2, 4);
        Tensor rejectedTokens = Vector(-0.5, -1.5, 0, 0, -1, -1, -1, -1).reshape(2, 4);
        Tensor rejectedMask = tensor(new[] { true, true, false, false, true, true, true, true }).reshape(2, 4);
        var forward = new PreferenceForward
        {
            Chosen = CompletionLogProbs.FromTokens(chosenTokens, chosenMask),
            Rejected = CompletionLogProbs.FromTokens(rejectedTokens, rejectedMask),
            ReferenceChosen = new CompletionLogProbs(Vector(-5, -1), Vector(3, 2)),
            ReferenceRejected = new CompletionLogProbs(Vector(-2, -3), Vector(2, 4)),
        };
        double[] ldChosen = [-1 - 2 + alpha * -3, -0.5 - 0.25];
        double[] ldRejected = [-0.5 - 1.5, -1 - 1 + alpha * (-1 - 1)];
        double expected = new[] { 0, 1 }.Select(i =>
            -LogSigmoid(beta * ((ldChosen[i] - new[] { -5.0, -1 }[i]) - (ldRejected[i] - new[] { -2.0, -3 }[i])))).Average();

        var loss = new DpoLoss("sigmoid", new() { Beta = beta, LdAlpha = alpha });
        Assert.True(loss.Requirements.PerTokenLogProbs);
        Assert.Equal(expected, Value(loss.Compute(forward).Loss), 12);
    }

    [Fact]
    public void Ld_dpo_without_per_token_values_names_what_is_missing()
    {
        using var scope = NewDisposeScope();
        var loss = new DpoLoss("sigmoid", new() { LdAlpha = 0.5 });
        var error = Assert.Throws<InvalidOperationException>(() => loss.Compute(Sample.Forward()));
        Assert.Contains("FromTokens", error.Message);
    }

    [Fact]
    public void Rpo_alpha_adds_the_token_mean_nll_of_the_chosen_completions()
    {
        using var scope = NewDisposeScope();
        var output = new DpoLoss("sigmoid", new() { Beta = 0.3, RpoAlpha = 0.7 }).Compute(Sample.Forward());
        double nll = -Sample.Chosen.Sum() / Sample.ChosenCount.Sum();
        Assert.Equal(Expected("sigmoid", Sample, 0.3, 0) + 0.7 * nll, Value(output.Loss), 12);
        Assert.Equal(nll, Value(output.Metrics["nll_loss"]), 12);
    }

    [Fact]
    public void Reference_free_uses_a_zero_reference_and_needs_no_reference_model()
    {
        using var scope = NewDisposeScope();
        var loss = new DpoLoss("sigmoid", new() { Beta = 0.3, ReferenceFree = true });
        var forward = new PreferenceForward
        {
            Chosen = new CompletionLogProbs(Vector(Sample.Chosen), Vector(Sample.ChosenCount)),
            Rejected = new CompletionLogProbs(Vector(Sample.Rejected), Vector(Sample.RejectedCount)),
        };
        double expected = Enumerable.Range(0, Sample.Count).Select(i => -LogSigmoid(0.3 * (Sample.Chosen[i] - Sample.Rejected[i]))).Average();
        Assert.False(loss.Requirements.Reference);
        Assert.Equal(expected, Value(loss.Compute(forward).Loss), 12);
    }

    [Fact]
    public void Metrics_use_trl_names_and_beta_scaled_implicit_rewards()
    {
        using var scope = NewDisposeScope();
        const double beta = 0.3;
        var metrics = new DpoLoss("sigmoid", new() { Beta = beta }).Compute(Sample.Forward()).Metrics;
        double[] chosen = Enumerable.Range(0, Sample.Count).Select(i => beta * (Sample.Chosen[i] - Sample.RefChosen[i])).ToArray();
        double[] rejected = Enumerable.Range(0, Sample.Count).Select(i => beta * (Sample.Rejected[i] - Sample.RefRejected[i])).ToArray();

        Assert.Equal(chosen.Average(), Value(metrics["rewards/chosen"]), 12);
        Assert.Equal(rejected.Average(), Value(metrics["rewards/rejected"]), 12);
        Assert.Equal(chosen.Zip(rejected, (c, r) => c - r).Average(), Value(metrics["rewards/margins"]), 12);
        Assert.Equal(chosen.Zip(rejected, (c, r) => c > r ? 1.0 : 0.0).Average(), Value(metrics["rewards/accuracies"]), 12);
        Assert.Equal(Sample.Chosen.Average(), Value(metrics["logps/chosen"]), 12);
        Assert.Equal(Sample.Rejected.Average(), Value(metrics["logps/rejected"]), 12);
        Assert.All(metrics.Values, m => Assert.False(m.requires_grad));
    }

    [Fact]
    public void Bco_pair_is_the_same_loss_for_the_same_batch_whatever_came_before()
    {
        using var scope = NewDisposeScope();
        var loss = new DpoLoss("bco_pair", new() { Beta = 0.3 });
        double first = Value(loss.Compute(Sample.Forward()).Loss);
        loss.Compute((Sample with { Chosen = Sample.Chosen.Select(x => x + 5).ToArray() }).Forward());
        Assert.Equal(first, Value(loss.Compute(Sample.Forward()).Loss), 12);
    }

    [Fact]
    public void Exo_pair_refuses_zero_label_smoothing()
    {
        var error = Assert.Throws<ArgumentException>(() => new DpoLoss("exo_pair", new() { LabelSmoothing = 0 }));
        Assert.Contains("label_smoothing", error.Message);
        Assert.Contains("1e-3", error.Message);
    }

    [Theory]
    [InlineData(0.0, 0.0, "beta")]
    [InlineData(-0.1, 0.0, "beta")]
    [InlineData(0.1, 0.5, "label_smoothing")]
    [InlineData(0.1, -0.01, "label_smoothing")]
    public void Bad_options_throw_naming_the_option(double beta, double smoothing, string name)
    {
        var error = Assert.Throws<ArgumentException>(() => new DpoLoss("sigmoid", new() { Beta = beta, LabelSmoothing = smoothing }));
        Assert.Contains(name, error.Message);
    }

    [Fact]
    public void Unknown_type_lists_the_known_ones()
    {
        var error = Assert.Throws<ArgumentException>(() => new DpoLoss("dpo_plus_plus"));
        Assert.Contains("sigmoid", error.Message);
    }

    [Fact]
    public void A_missing_reference_is_named()
    {
        using var scope = NewDisposeScope();
        var forward = new PreferenceForward
        {
            Chosen = new CompletionLogProbs(Vector(-1), Vector(1)),
            Rejected = new CompletionLogProbs(Vector(-2), Vector(1)),
        };
        var error = Assert.Throws<InvalidOperationException>(() => PreferenceLosses.Dpo().Compute(forward));
        Assert.Contains("ReferenceChosen", error.Message);
    }
}
