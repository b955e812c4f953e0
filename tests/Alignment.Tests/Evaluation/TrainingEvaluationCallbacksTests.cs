using System.Text.Json.Nodes;
using Alignment.Data;
using Alignment.Evaluation;
using Alignment.Models;
using Alignment.Scoring;
using Alignment.Tests.Models;
using Alignment.Training;

namespace Alignment.Tests.Evaluation;

public sealed class TrainingEvaluationCallbacksTests : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("alignment-eval-callbacks-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>A generator that answers from a function of the prompt and how often it has been asked.</summary>
    sealed class Counting(Func<string, int, string> reply) : ICompletionGenerator
    {
        int _calls;
        public string Name => "counting";

        public Task<IReadOnlyList<string>> GenerateAsync(string prompt, int count, CancellationToken cancellationToken = default) =>
            Task.FromResult<IReadOnlyList<string>>([.. Enumerable.Range(0, count).Select(_ => reply(prompt, _calls++))]);
    }

    [Fact]
    public void Completions_and_win_rate_are_logged_at_every_evaluation_step()
    {
        var train = Enumerable.Range(0, 8).Select(i => new TokenizedCompletion([1, 3 + i], [10 + i, 2], true, new SourceLocation("t", i + 1))).ToList();
        var options = SftTrainer.DefaultOptions with { LearningRate = 1e-3, BatchSize = 2, MaxSteps = 6, EvalSteps = 3, Seed = 1 };
        string completions = Path.Combine(_folder, "completions.jsonl");
        // The candidate's answers grow with each call; the judge prefers the longer one; the baseline says "b".
        var logger = new CompletionLogger(new Counting((p, n) => $"{p}:{n}"), ["p", "q"], completions);
        var winRate = new WinRateCallback(new Counting((_, n) => n < 2 ? "" : "long"), new Counting((_, _) => "b"),
            RuleJudge.FromScore("longer", (_, answer) => answer.Length), [new("x"), new("y")]);
        using var policy = new PolicyModel(TinyModels.Random(TinyModels.ConfigJson()));
        var history = new SftTrainer(policy, options, callbacks: [logger, winRate]).Train(train).History;

        var evaluations = history.Where(h => h.ContainsKey("eval_win_rate")).ToList();
        Assert.Equal([3.0, 6.0], evaluations.Select(h => h["step"]));
        Assert.Equal(0, evaluations[0]["eval_win_rate"]);  // "" loses to "b" for both prompts
        Assert.Equal(1, evaluations[1]["eval_win_rate"]);  // "long" beats "b"
        Assert.Equal(3.0, evaluations[0]["eval_completions/mean_length"]); // "p:0", "q:1"
        var lines = File.ReadAllLines(completions).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal([(3, "p", "p:0"), (3, "q", "q:1"), (6, "p", "p:2"), (6, "q", "q:3")],
            lines.Select(l => ((int)l["step"]!, (string)l["prompt"]!, (string)l["completion"]!)));
    }
}
