using System.Text.Json.Nodes;
using Alignment.Tests.Models;
using Alignment.Tests.Tokenization;

namespace Alignment.Cli.Tests;

/// <summary><c>align evaluate</c>: win rate against a baseline, end to end.</summary>
public sealed class EvaluateCliTests : CliFixture
{
    [Fact]
    public void Evaluate_writes_a_report_the_verdicts_and_a_plot()
    {
        string model = ModelFolder(), output = Path.Combine(_models.Root, "report");
        string prompts = Data("prompts.jsonl", """{"prompt": "hello", "category": "greeting"}""", """{"prompt": "the world", "category": "other"}""", """{"prompt": "world"}""");
        // A rule no tiny random model satisfies (<think>…</think> first): every verdict a tie, the win rate one half.
        var (code, text, error) = Run("evaluate", "--model", model, "--baseline", model, "--prompts", prompts, "--judge", "rule:think_format_reward",
            "--out", output, "--max-new-tokens", "4", "--temperature", "0");
        Assert.True(code == 0, error);
        Assert.Contains("3 prompts: 0 wins, 3 ties, 0 losses → win rate 50.0 %", text);
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "report.json")))!;
        Assert.Equal(0.5, (double)report["win_rate"]!);
        Assert.Equal(["greeting", "other"], report["by_category"]!.AsObject().Select(kv => kv.Key).Order());
        Assert.Equal(3, File.ReadAllLines(Path.Combine(output, "verdicts.jsonl")).Length);
        Assert.True(new FileInfo(Path.Combine(output, "win_rate.png")).Length > 1000);
        Assert.True(new FileInfo(Path.Combine(output, "length_effect.png")).Length > 1000);
    }

    [Theory]
    [InlineData("rule:telepathy", "unknown rule 'telepathy'")]
    [InlineData("reward:nowhere", "'nowhere' does not exist")]
    [InlineData("oracle", "none of reward:FOLDER, rule:NAME, llm:URL")]
    [InlineData("llm:http://127.0.0.1:9/v1", "needs --judge-model")]
    public void A_bad_judge_is_named(string judge, string expected)
    {
        string model = ModelFolder();
        var (code, _, error) = Run("evaluate", "--model", model, "--baseline", model, "--prompts", Data("p.jsonl", """{"prompt": "hello"}"""),
            "--judge", judge, "--out", Path.Combine(_models.Root, "r"));
        Assert.Equal(2, code);
        Assert.Contains(expected, error);
    }

    [Fact]
    public void The_ifeval_suite_checks_the_built_in_prompts()
    {
        string output = Path.Combine(_models.Root, "ifeval");
        var json = TinyModels.ConfigJson();
        (json["vocab_size"], json["max_position_embeddings"]) = (300, 512); // the byte-level prompts run to a few hundred tokens
        string model = _models.Folder("long", json);
        foreach (string file in Directory.GetFiles(_tokenizers.Folder("tok-long", chatTemplate: TinyTokenizers.ChatMlTemplate)))
            File.Copy(file, Path.Combine(model, Path.GetFileName(file)), overwrite: true);
        var (code, text, error) = Run("evaluate", "--suite", "ifeval", "--model", model, "--out", output, "--max-new-tokens", "4", "--temperature", "0");
        Assert.True(code == 0, error);
        Assert.Contains("24 prompts: prompt-level strict", text);
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "report.json")))!;
        Assert.InRange((double)report["instruction_level_loose"]!, (double)report["instruction_level_strict"]!, 1); // loose forgives more
        Assert.Equal(24, File.ReadAllLines(Path.Combine(output, "responses.jsonl")).Length);
    }

    [Fact]
    public void The_win_rate_needs_a_baseline_and_a_judge()
    {
        var (code, _, error) = Run("evaluate", "--model", ModelFolder(), "--prompts", Data("q.jsonl", """{"prompt": "hello"}"""), "--out", Path.Combine(_models.Root, "w"));
        Assert.Equal(2, code);
        Assert.Contains("--baseline is required for the win rate", error);
    }

    [Fact]
    public void An_llm_judge_behind_an_openai_compatible_endpoint()
    {
        // The "judge" always prefers the first response: every verdict flips with the order, so every pair is a tie.
        using var server = new Alignment.Tests.Scoring.FakeOpenAiServer(_ => "1");
        string model = ModelFolder(), output = Path.Combine(_models.Root, "llm");
        var (code, text, error) = Run("evaluate", "--model", model, "--baseline", model, "--prompts", Data("l.jsonl", """{"prompt": "hello"}""", """{"prompt": "world"}"""),
            "--judge", $"llm:{server.Endpoint}", "--judge-model", "fake", "--out", output, "--max-new-tokens", "3");
        Assert.True(code == 0, error);
        Assert.Contains("0 wins, 2 ties, 0 losses", text);
        Assert.Equal(8, server.Requests.Count);  // 2 pairs × 2 orders × the LLM judge's own 2 orders
        Assert.All(server.Requests, r => Assert.Equal("fake", (string)r.Body["model"]!));
    }

    [Fact]
    public void The_harmlessness_suite_counts_refusals_by_an_llm_classifier()
    {
        // The classifier says "yes" (a refusal) to every response: harmful prompts all refused, benign ones all over-refused.
        using var server = new Alignment.Tests.Scoring.FakeOpenAiServer(_ => "yes");
        string output = Path.Combine(_models.Root, "harm");
        string prompts = Data("h.jsonl", """{"prompt": "hello", "harmful": false}""", """{"prompt": "world", "harmful": true}""", """{"prompt": "the", "harmful": false}""");
        var (code, text, error) = Run("evaluate", "--suite", "harmlessness", "--model", ModelFolder(), "--prompts", prompts, "--judge", $"llm:{server.Endpoint}",
            "--judge-model", "fake", "--out", output, "--max-new-tokens", "3");
        Assert.True(code == 0, error);
        Assert.Contains("1 harmful prompts: refusal rate 100.0 %; 2 benign: over-refusal 100.0 %", text);
        Assert.Equal(3, server.Requests.Count);
        var (bad, _, badError) = Run("evaluate", "--suite", "harmlessness", "--model", ModelFolder(), "--prompts", Data("b.jsonl", """{"prompt": "x", "harmful": "maybe"}"""),
            "--out", output);
        Assert.Equal(2, bad);
        Assert.Contains("field 'harmful' must be true or false", badError);
    }

    [Fact]
    public void Completions_already_written_are_judged_without_a_model()
    {
        string completions = Data("c.jsonl",
            """{"prompt": "p1", "candidate": "<think>x</think>y", "baseline": "y"}""",
            """{"prompt": "p2", "candidate": "<think>a</think>b", "baseline": "b", "category": "math"}""",
            """{"prompt": "p3", "candidate": "plain", "baseline": "plain too"}""");
        string output = Path.Combine(_models.Root, "given");
        var (code, text, error) = Run("evaluate", "--completions", completions, "--judge", "rule:think_format_reward", "--out", output);
        Assert.True(code == 0, error);
        Assert.Contains("3 prompts: 2 wins, 1 ties, 0 losses → win rate 83.3 %", text);
        Assert.Equal(3, File.ReadAllLines(Path.Combine(output, "verdicts.jsonl")).Length);
        var (bad, _, badError) = Run("evaluate", "--completions", Data("d.jsonl", """{"prompt": "p", "candidate": "x"}"""), "--judge", "rule:think_format_reward", "--out", output);
        Assert.Equal(2, bad);
        Assert.Contains("field 'baseline' must be a string", badError);
        Assert.Contains("--model is required", Run("evaluate", "--judge", "rule:think_format_reward", "--out", output).Error);
    }
}
