using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;

namespace Alignment.Scoring;

/// <summary>
/// An <see cref="IChatClient"/> for any OpenAI-compatible chat-completions endpoint (a local Ollama or llama.cpp server,
/// vLLM, or OpenAI itself): it POSTs <c>{"model", "messages", "temperature", "max_tokens"}</c> to
/// <c>{endpoint}/chat/completions</c> and reads <c>choices[0].message.content</c>. Enough for the judges; no tools or
/// streaming (a streamed request gets the whole answer as one update).
/// </summary>
public sealed class OpenAiCompatibleChatClient : IChatClient
{
    readonly HttpClient _http;
    readonly Uri _completions;
    readonly string _model;

    /// <summary>Creates the client.</summary>
    /// <param name="endpoint">The API's base address, e.g. <c>http://localhost:11434/v1</c> for Ollama.</param>
    /// <param name="model">The model name the server knows.</param>
    /// <param name="apiKey">A bearer token, when the server wants one.</param>
    /// <param name="timeout">How long one request may take; 2 minutes when null.</param>
    public OpenAiCompatibleChatClient(Uri endpoint, string model, string? apiKey = null, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        _model = string.IsNullOrWhiteSpace(model) ? throw new ArgumentException("A model name is needed.", nameof(model)) : model;
        _completions = new Uri(endpoint.ToString().TrimEnd('/') + "/chat/completions");
        _http = new HttpClient { Timeout = timeout ?? TimeSpan.FromMinutes(2) };
        if (apiKey is not null)
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
    }

    /// <inheritdoc />
    /// <exception cref="HttpRequestException">The server answered with an error status (its body in the message) or could not be reached.</exception>
    /// <exception cref="InvalidDataException">The answer has no <c>choices[0].message.content</c>.</exception>
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var request = new JsonObject
        {
            ["model"] = options?.ModelId ?? _model,
            ["messages"] = new JsonArray([.. messages.Select(m => (JsonNode)new JsonObject { ["role"] = m.Role.Value, ["content"] = m.Text })]),
        };
        if (options?.Temperature is { } temperature)
            request["temperature"] = temperature;
        if (options?.MaxOutputTokens is { } maxTokens)
            request["max_tokens"] = maxTokens;
        using var content = new StringContent(request.ToJsonString(), Encoding.UTF8, "application/json");
        using HttpResponseMessage response = await _http.PostAsync(_completions, content, cancellationToken).ConfigureAwait(false);
        string body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
            throw new HttpRequestException($"{_completions} answered {(int)response.StatusCode} {response.ReasonPhrase}: {body[..Math.Min(500, body.Length)]}");
        string text = (string?)JsonNode.Parse(body)?["choices"]?[0]?["message"]?["content"]
            ?? throw new InvalidDataException($"{_completions} answered without choices[0].message.content: {body[..Math.Min(500, body.Length)]}");
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, text));
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ChatResponse response = await GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);
        yield return new ChatResponseUpdate(ChatRole.Assistant, response.Text);
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null) => serviceType.IsInstanceOfType(this) ? this : null;

    /// <inheritdoc />
    public void Dispose() => _http.Dispose();
}
