using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;

namespace Alignment.Annotation.Tests;

/// <summary>The server over real loopback HTTP: who may read and vote, limits, and many raters at once.</summary>
public sealed class AnnotationServerTests : IDisposable
{
    readonly Workspace _work = new();

    public void Dispose() => _work.Dispose();

    static HttpClient Client(AnnotationServer server, string? token)
    {
        var client = new HttpClient { BaseAddress = server.Address };
        if (token is not null)
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    [Fact]
    public async Task Raters_reach_only_their_own_queue_and_the_dashboard_needs_the_admin_token()
    {
        using var store = _work.Store(count: 3);
        Rater ann = store.AddRater("ann"), bob = store.AddRater("bob");
        await using var server = await AnnotationServer.StartAsync(store, new AnnotationServerOptions { Port = 0 });
        using HttpClient anonymous = Client(server, null), asBob = Client(server, bob.Token), asAnn = Client(server, ann.Token);

        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("api/raters/ann/next")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await asBob.GetAsync("api/raters/ann/next")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await asBob.PostAsync("api/raters/ann/votes", Json("""{"itemId": 1, "choice": "left"}"""))).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await asBob.PostAsync("api/raters/ann/undo", Json("{}"))).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await asBob.GetAsync("api/raters/nobody/next")).StatusCode);
        Assert.Empty(store.Votes());

        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("api/dashboard")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await asAnn.GetAsync("api/dashboard")).StatusCode);
        using HttpClient admin = Client(server, store.AdminToken);
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync("api/dashboard")).StatusCode);

        Assert.Equal(HttpStatusCode.BadRequest, (await asAnn.PostAsync("api/raters/ann/votes", Json("""{"itemId": 1, "choice": "sideways"}"""))).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await asAnn.PostAsync("api/raters/ann/votes", Json("not json"))).StatusCode);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge,
            (await asAnn.PostAsync("api/raters/ann/votes", Json($$"""{"itemId": 1, "choice": "left", "pad": "{{new string('x', 64 * 1024)}}"}"""))).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await asAnn.PostAsync("api/raters/ann/votes", Json("""{"itemId": 99, "choice": "left"}"""))).StatusCode);
        Assert.Empty(store.Votes());
    }

    [Fact]
    public async Task A_vote_is_stored_as_the_completion_shown_on_the_chosen_side()
    {
        using var store = _work.Store(count: 6, labels: 1);
        Rater ann = store.AddRater("ann");
        await using var server = await AnnotationServer.StartAsync(store, new AnnotationServerOptions { Port = 0 });
        using HttpClient client = Client(server, ann.Token);
        var expected = new List<(long Item, string Choice)>();
        for (int i = 0; i < 6; i++)
        {
            JsonNode next = JsonNode.Parse(await client.GetStringAsync("api/raters/ann/next"))!;
            long id = next["item"]!["id"]!.GetValue<long>();
            string left = next["item"]!["completions"]![0]!.GetValue<string>();
            string side = i % 2 == 0 ? "left" : "right";
            string chosenText = side == "left" ? left : next["item"]!["completions"]![1]!.GetValue<string>();
            expected.Add((id, chosenText.StartsWith('a') ? "a" : "b")); // item i's completions are "a{i}" and "b{i}"
            (await client.PostAsync("api/raters/ann/votes", Json($$"""{"itemId": {{id}}, "choice": "{{side}}", "seconds": 1.5}"""))).EnsureSuccessStatusCode();
        }
        Assert.Equal(expected, store.Votes().Select(v => (v.ItemId, v.Choice)));
        Assert.Null(JsonNode.Parse(await client.GetStringAsync("api/raters/ann/next"))!["item"]);
    }

    [Fact]
    public async Task Twenty_raters_voting_at_once_lose_nothing_duplicate_nothing_and_overfill_nothing()
    {
        const int raters = 20, votesEach = 50, labels = 3;
        using var store = _work.Store(count: 400, labels: labels);
        Rater[] people = Enumerable.Range(0, raters).Select(i => store.AddRater($"r{i}")).ToArray();
        await using var server = await AnnotationServer.StartAsync(store, new AnnotationServerOptions { Port = 0 });
        var acknowledged = new System.Collections.Concurrent.ConcurrentBag<(long Item, long Rater)>();

        await Task.WhenAll(people.Select(rater => Task.Run(async () =>
        {
            using HttpClient client = Client(server, rater.Token);
            var random = new Random((int)rater.Id);
            int accepted = 0;
            for (int attempt = 0; attempt < 500 && accepted < votesEach; attempt++) // bounded: stops by itself
            {
                JsonNode? item = JsonNode.Parse(await client.GetStringAsync($"api/raters/{rater.Name}/next"))!["item"];
                if (item is null)
                    break;
                long id = item["id"]!.GetValue<long>();
                string choice = new[] { "left", "right", "tie" }[random.Next(3)];
                HttpResponseMessage response = await client.PostAsync($"api/raters/{rater.Name}/votes", Json($$"""{"itemId": {{id}}, "choice": "{{choice}}"}"""));
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    acknowledged.Add((id, rater.Id));
                    accepted++;
                }
                else
                    Assert.Equal(HttpStatusCode.Conflict, response.StatusCode); // another rater filled the item first
            }
            Assert.Equal(votesEach, accepted);
        })));

        var stored = store.Votes();
        Assert.Equal(raters * votesEach, acknowledged.Count);
        Assert.Equal(acknowledged.Order(), stored.Select(v => (v.ItemId, v.RaterId)).Order());   // none lost, none extra
        Assert.Equal(stored.Count, stored.Select(v => (v.ItemId, v.RaterId)).Distinct().Count()); // none twice
        Assert.All(stored.GroupBy(v => v.ItemId), g => Assert.True(g.Count() <= labels, $"item {g.Key} has {g.Count()} labels"));
    }
}
