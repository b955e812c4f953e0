using Alignment.Data;
using Alignment.Evaluation;
using Alignment.Models;
using Alignment.Tests.Models;
using Alignment.Training;
using static TorchSharp.torch;

namespace Alignment.Tests.Evaluation;

public sealed class ForgettingMonitorTests
{
    static readonly SourceLocation Here = new("test", 1);

    /// <summary>Held-out examples of unequal lengths (so batches pad), ids below the tiny vocabulary's 64.</summary>
    static readonly List<TokenizedCompletion> HeldOut =
        [new([1, 5, 9], [20, 21, 2], true, Here), new([1], [30, 31, 32, 33, 2], true, Here), new([], [40, 41], true, Here), new([1, 7], [50, 2], true, Here)];

    /// <summary>The naive NLL and accuracy: each example alone, full logits, log-softmax, the completion tokens' terms.</summary>
    static (double Nll, double Accuracy) Naive(LlamaForCausalLM model)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        model.eval();
        double nll = 0, correct = 0, tokens = 0;
        foreach (var example in HeldOut)
        {
            long[] ids = [.. example.Prompt.Concat(example.Completion).Select(i => (long)i)];
            Tensor input = tensor(ids).unsqueeze(0);
            Tensor logProbs = model.Forward(input, ones_like(input)).matmul(model.LmHeadWeight.t())[0].to_type(ScalarType.Float64).log_softmax(-1);
            for (int t = example.Prompt.Length; t < ids.Length; t++)
            {
                if (t == 0)
                    continue; // the first token of a prompt-less text has nothing before it
                nll -= logProbs[t - 1, ids[t]].item<double>();
                correct += logProbs[t - 1].argmax().item<long>() == ids[t] ? 1 : 0;
                tokens++;
            }
        }
        return (nll / tokens, correct / tokens);
    }

    [Fact]
    public void The_nll_and_accuracy_equal_a_naive_computation()
    {
        using var model = TinyModels.Random(TinyModels.ConfigJson());
        var monitor = new ForgettingMonitor(model, HeldOut, padTokenId: 0) { BatchSize = 3 };
        var (nll, accuracy) = Naive(model);
        var metrics = monitor.Evaluate(0);
        Assert.Equal(nll, metrics["forgetting_nll"], 5);
        Assert.Equal(accuracy, metrics["forgetting_accuracy"], 12);
        Assert.Equal(0, metrics["forgetting_nll_change"]);
    }

    [Fact]
    public void Training_logs_forgetting_at_every_evaluation_and_an_alarm_stops_it()
    {
        var train = Enumerable.Range(0, 8).Select(i => new TokenizedCompletion([1, 3 + i], [10 + i, 11 + i, 2], true, Here)).ToList();
        var options = SftTrainer.DefaultOptions with { LearningRate = 1e-2, BatchSize = 2, MaxSteps = 4, EvalSteps = 2, Seed = 3 };
        using (var policy = new PolicyModel(TinyModels.Random(TinyModels.ConfigJson())))
        {
            double before = Naive(policy.Model).Nll;
            var monitor = new ForgettingMonitor(policy.Model, HeldOut, padTokenId: 0);
            var history = new SftTrainer(policy, options, callbacks: [monitor]).Train(train).History;
            var evaluations = history.Where(h => h.ContainsKey("eval_forgetting_nll")).ToList();
            Assert.Equal([2.0, 4.0], evaluations.Select(h => h["step"]));
            Assert.Equal(before, monitor.Baseline!.Value, 5);
            Assert.Equal(Naive(policy.Model).Nll, evaluations[^1]["eval_forgetting_nll"], 5);
            Assert.Equal(evaluations[^1]["eval_forgetting_nll"] - before, evaluations[^1]["eval_forgetting_nll_change"], 5);
        }
        using (var policy = new PolicyModel(TinyModels.Random(TinyModels.ConfigJson())))
        {
            var alarmed = new ForgettingMonitor(policy.Model, HeldOut, padTokenId: 0) { AlarmThreshold = -1e9, StopOnAlarm = true };
            TrainingResult result = new SftTrainer(policy, options, callbacks: [alarmed]).Train(train);
            Assert.True(result.StoppedEarly);
            Assert.Equal(2, result.Steps);
        }
    }
}
