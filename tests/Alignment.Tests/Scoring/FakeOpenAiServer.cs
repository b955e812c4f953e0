using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Alignment.Tests.Scoring;

/// <summary>
/// A real HTTP server on a free local port that speaks OpenAI's chat-completions protocol: it answers each POST to
/// <c>/v1/chat/completions</c> with a function of the request's JSON, and records the requests.
/// </summary>
internal sealed class FakeOpenAiServer : IDisposable
{
    readonly HttpListener _listener = new();
    readonly Task _serving;

    public FakeOpenAiServer(Func<JsonObject, string> answer)
    {
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }
        Endpoint = new Uri($"http://127.0.0.1:{port}/v1");
        _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        _listener.Start();
        _serving = Task.Run(async () =>
        {
            while (_listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await _listener.GetContextAsync();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
                {
                    return;
                }
                using var reader = new StreamReader(context.Request.InputStream, Encoding.UTF8);
                var request = JsonNode.Parse(await reader.ReadToEndAsync())!.AsObject();
                lock (Requests)
                    Requests.Add((context.Request.Url!.AbsolutePath, context.Request.Headers["Authorization"], request));
                string body = new JsonObject
                {
                    ["choices"] = new JsonArray(new JsonObject { ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = answer(request) } }),
                }.ToJsonString();
                byte[] bytes = Encoding.UTF8.GetBytes(body);
                context.Response.ContentType = "application/json";
                await context.Response.OutputStream.WriteAsync(bytes);
                context.Response.Close();
            }
        });
    }

    public Uri Endpoint { get; }

    public List<(string Path, string? Authorization, JsonObject Body)> Requests { get; } = [];

    /// <summary>The text of the last user message of a request.</summary>
    public static string UserText(JsonObject request) => (string)request["messages"]!.AsArray()[^1]!["content"]!;

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
        _serving.Wait(TimeSpan.FromSeconds(5));
    }
}
