using Alignment.Scoring;
using Microsoft.Extensions.AI;

namespace Alignment.Tests.Scoring;

public sealed class OpenAiCompatibleChatClientTests
{
    [Fact]
    public async Task It_speaks_openais_chat_completions_protocol_and_drives_a_judge()
    {
        // The "model" prefers the response that mentions "good".
        using var server = new FakeOpenAiServer(request =>
        {
            string text = FakeOpenAiServer.UserText(request);
            int first = text.IndexOf("Response 1:", StringComparison.Ordinal), second = text.IndexOf("Response 2:", StringComparison.Ordinal);
            return text.IndexOf("good", first, StringComparison.Ordinal) is int at && at >= 0 && at < second ? "1" : "2";
        });
        using var client = new OpenAiCompatibleChatClient(server.Endpoint, "judge-model", apiKey: "secret");
        ChatResponse plain = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "Response 1: good Response 2: bad")], new ChatOptions { Temperature = 0 });
        Assert.Equal("1", plain.Text);
        var (path, authorization, body) = server.Requests[0];
        Assert.Equal(("/v1/chat/completions", "Bearer secret", "judge-model", "user", 0.0), (path, authorization, (string)body["model"]!,
            (string)body["messages"]![0]!["role"]!, (double)body["temperature"]!));

        Judgement verdict = await new LlmJudge(client).JudgeAsync("which?", "a bad answer", "a good answer");
        Assert.Equal(Preference.Second, verdict.Preferred); // asked in both orders; "good" wins both times
        Assert.Equal(3, server.Requests.Count);
    }

    [Fact]
    public async Task An_error_status_is_an_exception_naming_the_endpoint()
    {
        using var client = new OpenAiCompatibleChatClient(new Uri("http://127.0.0.1:9/v1"), "m", timeout: TimeSpan.FromSeconds(5));
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => client.GetResponseAsync([new ChatMessage(ChatRole.User, "x")]));
    }
}
