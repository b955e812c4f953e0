using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Alignment.Annotation;

/// <summary>
/// The annotation web app: each rater's page at <c>/r/NAME#TOKEN</c> (the token stays in the fragment, out of server
/// logs, and goes to the API as a bearer token), the lead's dashboard at <c>/dashboard#ADMIN_TOKEN</c>, and a small
/// JSON API behind them. Every vote is committed to the store before its response is sent.
/// </summary>
public sealed class AnnotationServer : IAsyncDisposable
{
    readonly WebApplication _app;
    readonly IAnnotationStore _store;

    AnnotationServer(WebApplication app, IAnnotationStore store, Uri address) => (_app, _store, Address) = (app, store, address);

    /// <summary>The address the server listens on, e.g. <c>http://127.0.0.1:5000/</c>.</summary>
    public Uri Address { get; }

    /// <summary>A rater's personal link.</summary>
    public string RaterLink(Rater rater) => $"{Address}r/{Uri.EscapeDataString(rater.Name)}#{rater.Token}";

    /// <summary>The dashboard's link, with the admin token.</summary>
    public string DashboardLink => $"{Address}dashboard#{_store.AdminToken}";

    /// <summary>Starts listening.</summary>
    /// <exception cref="IOException">The address is in use.</exception>
    public static async Task<AnnotationServer> StartAsync(IAnnotationStore store, AnnotationServerOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        options ??= new AnnotationServerOptions();
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes;
            kestrel.Listen(IPAddress.Parse(options.Host), options.Port);
        });
        WebApplication app = builder.Build();
        Map(app, store, options);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        string bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new AnnotationServer(app, store, new Uri(bound.EndsWith('/') ? bound : bound + "/"));
    }

    /// <summary>Runs until <paramref name="cancellationToken"/> is cancelled.</summary>
    public Task WaitAsync(CancellationToken cancellationToken) => _app.WaitForShutdownAsync(cancellationToken);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }

    static void Map(WebApplication app, IAnnotationStore store, AnnotationServerOptions options)
    {
        app.MapGet("/", () => Results.Text("Alignment annotation server: open your personal link (/r/NAME#TOKEN) or the dashboard (/dashboard#ADMIN_TOKEN).\n"));
        app.MapGet("/r/{name}", (string name) => Results.Content(Pages.Rater(store.Mode), "text/html; charset=utf-8"));
        app.MapGet("/dashboard", () => Results.Content(Pages.Dashboard, "text/html; charset=utf-8"));

        app.MapGet("/api/raters/{name}/next", (string name, HttpRequest request) =>
        {
            if (Authorize(store, name, request, out Rater rater) is { } refusal)
                return refusal;
            Candidate? item = store.Next(rater);
            var (done, remaining) = store.Progress(rater);
            var body = new JsonObject { ["mode"] = store.Mode.ToString().ToLowerInvariant(), ["done"] = done, ["remaining"] = remaining };
            if (item is not null)
            {
                bool swapped = LeftRight.Swapped(store.AdminToken, item.Id, rater.Id);
                body["item"] = new JsonObject
                {
                    ["id"] = item.Id,
                    ["prompt"] = item.PromptText,
                    ["completions"] = new JsonArray(store.Mode == AnnotationMode.Pairwise
                        ? [item.CompletionText(swapped ? 1 : 0), item.CompletionText(swapped ? 0 : 1)]
                        : Enumerable.Range(0, item.Completions.Count).Select(i => (JsonNode)item.CompletionText(i)).ToArray()),
                };
            }
            return Results.Text(body.ToJsonString(), "application/json");
        });

        app.MapPost("/api/raters/{name}/votes", async (string name, HttpRequest request) =>
        {
            if (Authorize(store, name, request, out Rater rater) is { } refusal)
                return refusal;
            JsonObject? body;
            try
            {
                body = await JsonNode.ParseAsync(request.Body).ConfigureAwait(false) as JsonObject;
            }
            catch (BadHttpRequestException e)
            {
                return Results.Text(e.Message, statusCode: e.StatusCode);
            }
            catch (JsonException e)
            {
                return Results.BadRequest($"The vote is not JSON: {e.Message}");
            }
            if (ParseVote(store, rater, body) is not { } vote)
                return Results.BadRequest(store.Mode == AnnotationMode.Pairwise
                    ? "A vote is {\"itemId\": N, \"choice\": \"left\"|\"right\"|\"tie\"|\"skip\", \"seconds\": S}."
                    : "A vote is {\"itemId\": N, \"ratings\": [1-5 per completion] (or \"choice\": \"skip\"), \"seconds\": S}.");
            return store.Vote(rater, vote) switch
            {
                VoteOutcome.Accepted => Results.Ok(new { outcome = "accepted" }),
                VoteOutcome.UnknownItem => Results.NotFound(new { outcome = "unknown item" }),
                var outcome => Results.Conflict(new { outcome = outcome == VoteOutcome.ItemFull ? "item full" : "already voted" }),
            };
        });

        app.MapPost("/api/raters/{name}/undo", (string name, HttpRequest request) =>
        {
            if (Authorize(store, name, request, out Rater rater) is { } refusal)
                return refusal;
            return store.Undo(rater) is { } item ? Results.Ok(new { itemId = item }) : Results.NotFound(new { outcome = "nothing to undo" });
        });

        app.MapGet("/api/dashboard", (HttpRequest request) =>
        {
            if (Bearer(request) is not { } token)
                return Results.Unauthorized();
            if (!Same(token, store.AdminToken))
                return Results.StatusCode(StatusCodes.Status403Forbidden);
            return Results.Text(JsonSerializer.Serialize(DashboardReport.Compute(store, options.DisagreementThreshold), JsonOptions), "application/json");
        });
    }

    static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web) { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    /// <summary>401 without a bearer token, 403 when it is not this rater's; null (and the rater) when it is.</summary>
    static IResult? Authorize(IAnnotationStore store, string name, HttpRequest request, out Rater rater)
    {
        rater = null!;
        if (Bearer(request) is not { } token)
            return Results.Unauthorized();
        if (store.RaterNamed(name) is not { } named || !Same(token, named.Token))
            return Results.StatusCode(StatusCodes.Status403Forbidden);
        rater = named;
        return null;
    }

    static string? Bearer(HttpRequest request) =>
        request.Headers.Authorization.ToString() is { } header && header.StartsWith("Bearer ", StringComparison.Ordinal) && header.Length > 7 ? header[7..] : null;

    static bool Same(string a, string b) => CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(a), Encoding.UTF8.GetBytes(b));

    static StoredVote? ParseVote(IAnnotationStore store, Rater rater, JsonObject? body)
    {
        if (body?["itemId"] is not JsonValue idValue || !idValue.TryGetValue(out long itemId))
            return null;
        double seconds = body["seconds"] is JsonValue s && s.TryGetValue(out double value) && double.IsFinite(value) && value >= 0 ? value : 0;
        bool swapped = LeftRight.Swapped(store.AdminToken, itemId, rater.Id);
        string? choice = body["choice"] is JsonValue c && c.TryGetValue(out string? text) ? text : null;
        if (choice == "skip")
            return new StoredVote(itemId, rater.Id, "skip", null, !swapped, seconds);
        if (store.Mode == AnnotationMode.Pairwise)
        {
            string? stored = choice switch
            {
                "left" => swapped ? "b" : "a",
                "right" => swapped ? "a" : "b",
                "tie" => "tie",
                _ => null,
            };
            return stored is null ? null : new StoredVote(itemId, rater.Id, stored, null, !swapped, seconds);
        }
        if (body["ratings"] is not JsonArray ratings || ratings.Count > 64)
            return null;
        var scores = new List<int>();
        foreach (JsonNode? r in ratings)
        {
            if (r is not JsonValue rv || !rv.TryGetValue(out int score) || score is < 1 or > 5)
                return null;
            scores.Add(score);
        }
        Candidate? item = store.Item(itemId);
        return item is null || item.Completions.Count != scores.Count ? null : new StoredVote(itemId, rater.Id, "rated", scores, true, seconds);
    }
}
