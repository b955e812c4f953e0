using System.Runtime.CompilerServices;
using Alignment.Scoring;
using Alignment.Models;
using Alignment.Tests.Models;
using Alignment.Tests.Tokenization;
using Alignment.Tokenization;
using Microsoft.Extensions.AI;
using static TorchSharp.torch;

namespace Alignment.Tests.Scoring;

public sealed class PreferenceJudgesTests : IDisposable
{
    readonly TinyTokenizers _tokenizers = new();

    public void Dispose() => _tokenizers.Dispose();


    /// <summary>Picks whichever response position holds the word "good".</summary>
    static string Fair(string request)
    {
        int first = request.IndexOf("Response 1:", StringComparison.Ordinal), second = request.IndexOf("Response 2:", StringComparison.Ordinal);
        string one = request[first..second];
        return one.Contains("good") ? "1" : "Response 2 is better.";
    }

    [Fact]
    public async Task The_llm_judge_asks_in_both_orders_and_agrees_with_a_fair_model()
    {
        var client = new FakeChatClient(Fair);
        var judge = new LlmJudge(client);
        Assert.Equal(new Judgement(Preference.First, 1.0), await judge.JudgeAsync("q", "a good answer", "a bad answer"));
        Assert.Equal(new Judgement(Preference.Second, 1.0), await judge.JudgeAsync("q", "a bad answer", "a good answer"));
        Assert.Equal(4, client.Calls);
    }

    [Fact]
    public async Task A_position_biased_model_yields_a_tie()
    {
        var judge = new LlmJudge(new FakeChatClient(_ => "1"));
        Assert.Equal(Preference.Tie, (await judge.JudgeAsync("q", "a good answer", "a bad answer")).Preferred);
        var unreadable = new LlmJudge(new FakeChatClient(_ => "I cannot decide."));
        Assert.Equal(Preference.Tie, (await unreadable.JudgeAsync("q", "x", "y")).Preferred);
    }

    [Fact]
    public async Task A_rule_judge_follows_its_score()
    {
        var judge = RuleJudge.FromScore("length", (_, c) => c.Length);
        Assert.Equal(Preference.Second, (await judge.JudgeAsync("q", "ab", "abc")).Preferred);
        Assert.Equal(Preference.Tie, (await judge.JudgeAsync("q", "ab", "cd")).Preferred);
    }

    [Fact]
    public async Task The_reward_model_judge_is_antisymmetric_with_bradley_terry_confidence()
    {
        var json = TinyModels.ConfigJson();
        json["vocab_size"] = 300; // the test tokenizer's ids reach 276
        using var model = TinyModels.Random(json);
        var head = new ScalarHead(model.Config.HiddenSize, generator: new Generator(3));
        var tokenizer = ModelTokenizer.FromFolder(_tokenizers.Folder("tok"));
        var reward = new RewardModel(model, head, tokenizer, ChatTemplates.Named("chatml", tokenizer)); // not disposed: the test owns the model
        var judge = new RewardModelJudge(reward);

        Judgement forward = await judge.JudgeAsync("hello", "the world", "hello hello");
        Judgement backward = await judge.JudgeAsync("hello", "hello hello", "the world");
        double gap = Math.Abs(reward.Score(["hello"], ["the world"])[0] - reward.Score(["hello"], ["hello hello"])[0]);

        Assert.NotEqual(forward.Preferred, backward.Preferred);
        Assert.Equal(1 / (1 + Math.Exp(-gap)), forward.Confidence!.Value, 12);
    }
}
