using Alignment.Data;
using Alignment.Kernels;
using Alignment.Losses;
using Alignment.Models;
using Alignment.Tests.Models;
using Alignment.Tests.Training;
using Alignment.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Tests.Kernels;

/// <summary>Gemma 2's final-logit soft-capping reaches every score: the fused kernels do not apply it, so such models go through their logits.</summary>
public sealed class ModelLogProbsTests
{
    static readonly long[] Tokens = [1, 5, 63, 17, 8, 8, 40, 2, 33, 12];

    /// <summary>log p(token t+1 | ≤ t) from the naive float64 logits.</summary>
    static double[] NaiveLogProbs(LlamaForCausalLM model, long[] tokens)
    {
        double[][] logits = NaiveGemma.Logits(model, tokens);
        return Enumerable.Range(0, tokens.Length - 1).Select(t =>
        {
            double max = logits[t].Max();
            return logits[t][tokens[t + 1]] - max - Math.Log(logits[t].Sum(z => Math.Exp(z - max)));
        }).ToArray();
    }

    [Fact]
    public void A_soft_capped_model_is_scored_through_its_capped_logits()
    {
        using var scope = NewDisposeScope();
        using LlamaForCausalLM model = TinyModels.Random(TinyModels.GemmaConfigJson());
        model.to(ScalarType.Float64);
        Tensor ids = tensor(Tokens).unsqueeze(0);
        Tensor targets = cat([ids.narrow(1, 1, Tokens.Length - 1), full(1, 1, TokenLogProbs.IgnoreIndex, ScalarType.Int64)], 1);
        Tensor hidden = model.Forward(ids);

        Assert.False(ModelLogProbs.Fusable(model));
        double[] scored = ModelLogProbs.Of(model, hidden, targets)[0].data<double>().ToArray();
        double[] expected = NaiveLogProbs(model, Tokens);
        for (int t = 0; t < expected.Length; t++)
            Assert.Equal(expected[t], scored[t], 5);
        Assert.Equal(0, scored[^1]);
        // The uncapped kernel would have been silently wrong: the cap of 3 moves these log-probabilities by far more.
        double[] uncapped = TokenLogProbs.FromHidden(hidden, model.LmHeadWeight, targets)[0].data<double>().ToArray();
        Assert.True(expected.Zip(uncapped).Max(e => Math.Abs(e.First - e.Second)) > 0.1);
    }

    /// <summary>Keeps the policy's per-sequence sums of the first batch it sees.</summary>
    sealed class Recording(IPreferenceLoss inner) : IPreferenceLoss
    {
        public double[]? Chosen { get; private set; }
        public string Name => inner.Name;
        public LossRequirements Requirements => inner.Requirements;
        public PreferenceLossOutput Compute(PreferenceForward forward)
        {
            Chosen ??= forward.Chosen!.Sums.detach().to_type(ScalarType.Float64).data<double>().ToArray();
            return inner.Compute(forward);
        }
    }

    [Fact]
    public void Preference_training_of_gemma_2_scores_completions_as_the_naive_capped_model()
    {
        using var scope = NewDisposeScope();
        var model = TinyModels.Random(TinyModels.GemmaConfigJson());
        model.to(ScalarType.Float64);
        using var policy = new PolicyModel(model);
        using ReferenceModel reference = policy.CreateReference();
        var loss = new Recording(PreferenceLosses.Dpo());
        List<TokenizedPair> pairs = PreferenceTrainerTests.Pairs(2);
        // Expected before training: each pair's chosen completion summed over its own tokens, unpadded.
        double[] expected = pairs.Select(pair =>
        {
            long[] sequence = pair.Prompt.Concat(pair.Chosen).Select(i => (long)i).ToArray();
            return NaiveLogProbs(model, sequence).Skip(pair.Prompt.Length - 1).Sum();
        }).ToArray();

        new PreferenceTrainer(policy, loss, PreferenceTrainerTests.Options(steps: 1) with { BatchSize = 2 }, reference).Train(pairs);

        Assert.Equal(expected.Order(), loss.Chosen!.Order(), (a, b) => Math.Abs(a - b) < 1e-5);
    }
}
