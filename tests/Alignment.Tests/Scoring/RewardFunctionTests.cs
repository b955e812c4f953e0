using System.Text.Json.Nodes;
using Alignment.Scoring;

namespace Alignment.Tests.Scoring;

public sealed class RewardFunctionTests
{
    static RewardSample Sample(string completion, string? solution = null, int tokens = 1, bool withColumn = true) =>
        new("prompt", completion, new int[tokens],
            withColumn ? new Dictionary<string, JsonNode?> { ["solution"] = solution is null ? null : JsonValue.Create(solution) } : new Dictionary<string, JsonNode?>());

    static double? Score(IRewardFunction reward, RewardSample sample) => reward.Score([sample]).Single();

    [Theory]
    [InlineData(@"The sum is \boxed{13}.", "13", 1)]
    [InlineData(@"I think \boxed{12}, no wait \boxed{13}", "13", 1)]           // the last box
    [InlineData(@"\boxed{\frac{1}{3}}", "1/3", 1)]                                 // TRL's docstring example, as a value
    [InlineData(@"\boxed{\frac{1}{2}}", @"\frac{1}{3}", 0)]
    [InlineData("<answer> 1,234 </answer>", "1234", 1)]                           // thousands commas
    [InlineData("4 + 9 = 13", "13", 1)]                                           // the last number
    [InlineData("13 is wrong, it is 14", "13", 0)]
    [InlineData("0.50", "1/2", 1)]
    [InlineData("-3", "-3.0", 1)]
    [InlineData("Answer: Paris.", "paris", 1)]                                    // text: case, final period, lead
    [InlineData("Paris is the capital\nFinal answer: Lyon", "Paris", 0)]          // the last line
    [InlineData("no number here", "7", 0)]
    [InlineData("Step 1: 2+2=4\n#### 4", "Natalia sold 48/2 = 24 clips.\n#### 4", 1)] // GSM8K's '####' in the solution
    public void Accuracy_compares_the_final_answer_with_the_solution(string completion, string solution, double expected) =>
        Assert.Equal(expected, Score(RewardFunction.Accuracy(), Sample(completion, solution)));

    [Theory]
    [InlineData(null)]
    [InlineData("   ")]
    public void Accuracy_abstains_when_the_solution_is_missing_or_empty(string? solution) =>
        Assert.Null(Score(RewardFunction.Accuracy(), Sample("13", solution)));

    [Fact]
    public void Accuracy_reads_a_numeric_solution_column_and_names_a_missing_one()
    {
        var numeric = new RewardSample("p", "it is 42", [1], new Dictionary<string, JsonNode?> { ["answer"] = JsonValue.Create(42) });
        Assert.Equal(1, Score(RewardFunction.Accuracy("answer"), numeric));

        var error = Assert.Throws<InvalidOperationException>(() => RewardFunction.Accuracy().Score([numeric]));
        Assert.Contains("'solution'", error.Message);
        Assert.Contains("'answer'", error.Message);
    }

    [Theory]
    [InlineData("<think>4+9</think> so \\boxed{13}", 1)]
    [InlineData("<think>4+9 = \\boxed{13}", 0)]              // unfinished reasoning is 0, not an abstention (TRL)
    [InlineData("<think>\\boxed{13}</think> \\boxed{12}", 0)] // only the text after the reasoning counts
    public void Reasoning_accuracy_reads_only_what_follows_the_reasoning(string completion, double expected) =>
        Assert.Equal(expected, Score(RewardFunction.ReasoningAccuracy(), Sample(completion, "13")));

    [Theory]
    [InlineData("<think>\nThis is my reasoning.\n</think>\nThis is my answer.", 1)] // TRL's docstring examples
    [InlineData("<think>\nThis is my reasoning.\nThis is my answer.", 0)]
    [InlineData(" <think>a</think>b", 0)]                                       // re.match: at the start only
    [InlineData("<think>a<think>b</think>c", 0)]                                // no second <think>
    [InlineData("<think></think>", 1)]
    public void Think_format_is_trls_pattern(string completion, double expected)
    {
        IRewardFunction reward = RewardFunction.ThinkFormat();
        Assert.Equal("think_format_reward", reward.Name);
        Assert.Equal(expected, Score(reward, Sample(completion, withColumn: false)));
    }

    [Fact]
    public void A_format_pattern_must_compile()
    {
        Assert.Equal(1, Score(RewardFunction.Format("answer_tag", "<answer>.*</answer>$"), Sample("<answer>\n7\n</answer>", withColumn: false)));
        var error = Assert.Throws<ArgumentException>(() => RewardFunction.Format("bad", "(unclosed"));
        Assert.Contains("bad", error.Message);
    }

    [Theory] // DAPO eq. 13 with L_max 100, L_cache 20: 0 up to 80 tokens, then (80 − L)/20, −1 beyond 100
    [InlineData(1, 0)]
    [InlineData(80, 0)]
    [InlineData(81, -0.05)]
    [InlineData(90, -0.5)] // TRL's docstring example
    [InlineData(100, -1)]
    [InlineData(101, -1)]
    public void Soft_overlong_punishment_follows_dapo(int tokens, double expected)
    {
        IRewardFunction reward = RewardFunction.SoftOverlongPunishment(100, 20);
        Assert.Equal("soft_overlong_punishment_reward", reward.Name);
        Assert.Equal(expected, Score(reward, Sample("", tokens: tokens, withColumn: false))!.Value, 12);
    }

    [Fact]
    public void Soft_overlong_punishment_refuses_a_cache_beyond_the_maximum() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => RewardFunction.SoftOverlongPunishment(10, 11));

    [Fact]
    public void Reward_models_and_delegates_become_reward_functions()
    {
        var model = RewardFunction.From("length", new DelegateReward((prompt, completion) => prompt.Length + completion.Length)); // "prompt": 6 characters
        Assert.Equal([12.0, 15.0], model.Score([Sample("abcdef"), Sample("abcdefghi")]));
        var abstaining = RewardFunction.From("odd", sample => sample.Completion.Length % 2 == 1 ? 1.0 : null);
        Assert.Equal([null, 1.0], abstaining.Score([Sample("ab"), Sample("abc")]));
        Assert.Throws<ArgumentException>(() => RewardFunction.From("two words", sample => 1.0));
    }

    [Fact]
    public void A_column_reads_as_text()
    {
        var sample = new RewardSample("p", "c", [], new Dictionary<string, JsonNode?>
        {
            ["s"] = JsonValue.Create("x"), ["n"] = JsonValue.Create(2.5), ["a"] = new JsonArray(1, 2), ["z"] = null,
        });
        Assert.Equal(["x", "2.5", "[1,2]", null, null], new[] { "s", "n", "a", "z", "missing" }.Select(sample.Column));
    }
}
