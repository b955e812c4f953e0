using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Alignment.Annotation;

namespace Alignment.Cli.Tests;

/// <summary><c>align annotate</c>: raters, serving as a real process that is killed mid-session, export, bad input.</summary>
public sealed class AnnotateCliTests : CliFixture
{
    string Candidates(int count) => Data("candidates.jsonl", Enumerable.Range(1, count)
        .Select(i => $$"""{"prompt": "p{{i}}", "completion_a": "a{{i}}", "completion_b": "b{{i}}"}""").ToArray());

    /// <summary>Starts <c>align annotate serve</c> as its own process on a free port and returns it with its address.</summary>
    static (Process Process, Uri Address) Serve(string input, string db)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in new[] { Path.Combine(AppContext.BaseDirectory, "align.dll"), "annotate", "serve", "--input", input, "--db", db, "--port", "0", "--labels-per-example", "2" })
            start.ArgumentList.Add(arg);
        var process = Process.Start(start)!;
        var listening = Task.Run(() =>
        {
            for (string? line; (line = process.StandardOutput.ReadLine()) is not null;)
                if (line.StartsWith("Listening on ", StringComparison.Ordinal))
                    return new Uri(line["Listening on ".Length..].Split(' ')[0]);
            throw new InvalidOperationException("align annotate serve ended: " + process.StandardError.ReadToEnd());
        });
        if (!listening.Wait(TimeSpan.FromSeconds(60)))
        {
            process.Kill();
            throw new TimeoutException("align annotate serve did not start within 60 s.");
        }
        _ = Task.Run(() => process.StandardOutput.ReadToEnd()); // keep the pipe drained
        return (process, listening.Result);
    }

    [Fact]
    public async Task A_server_killed_mid_session_loses_no_acknowledged_vote_and_resumes_each_queue()
    {
        string input = Candidates(40), db = Path.Combine(_models.Root, "a.db");
        var (added, text, error) = Run("annotate", "raters", "add", "ann", "--db", db);
        Assert.True(added == 0, error);
        string token = text.Trim().Split('#')[1];
        var acknowledged = new List<long>();

        var (server, address) = Serve(input, db);
        try
        {
            using var client = new HttpClient { BaseAddress = address };
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using var stop = new CancellationTokenSource();
            Task voting = Task.Run(async () =>
            {
                try
                {
                    for (int i = 0; i < 40 && !stop.IsCancellationRequested; i++)
                    {
                        long id = JsonNode.Parse(await client.GetStringAsync("api/raters/ann/next"))!["item"]!["id"]!.GetValue<long>();
                        var response = await client.PostAsync("api/raters/ann/votes",
                            new StringContent($$"""{"itemId": {{id}}, "choice": "left"}""", Encoding.UTF8, "application/json"));
                        if (response.StatusCode == HttpStatusCode.OK)
                            lock (acknowledged)
                                acknowledged.Add(id);
                    }
                }
                catch (HttpRequestException) { } // the server died under a request: that vote was never acknowledged
            });
            while (true)
            {
                lock (acknowledged)
                    if (acknowledged.Count >= 12)
                        break;
                await Task.Delay(5);
            }
            server.Kill(); // SIGKILL, with requests in flight
            stop.Cancel();
            await voting;
        }
        finally
        {
            server.Kill();
            server.WaitForExit();
        }

        long[] before;
        lock (acknowledged)
            before = [.. acknowledged];
        var (again, address2) = Serve(input, db);
        long[] stored;
        try
        {
            using (var store = SqliteAnnotationStore.Open(db))
            {
                stored = store.Votes().Select(v => v.ItemId).ToArray();
                Assert.Subset(stored.ToHashSet(), before.ToHashSet()); // every acknowledged vote is there
                Assert.True(stored.Length - before.Length <= 1, "at most the one vote in flight at the kill is stored without an acknowledgement");
                using var client = new HttpClient { BaseAddress = address2 };
                client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
                JsonNode next = JsonNode.Parse(await client.GetStringAsync("api/raters/ann/next"))!;
                Assert.DoesNotContain(next["item"]!["id"]!.GetValue<long>(), stored); // the queue resumes past what was voted
                Assert.Equal(stored.Length, next["done"]!.GetValue<int>());
            }
        }
        finally
        {
            again.Kill();
            again.WaitForExit();
        }

        string pairs = Path.Combine(_models.Root, "pairs.jsonl");
        var (exported, summary, exportError) = Run("annotate", "export", "--db", db, "--out", pairs);
        Assert.True(exported == 0, exportError);
        Assert.Equal(stored.Length, File.ReadAllLines(pairs).Length); // one label each: a strict majority every time
        Assert.Contains($"{stored.Length} pairs", summary);
    }

    [Fact]
    public void Malformed_candidates_are_refused_at_start_with_file_and_line()
    {
        string bad = Data("bad.jsonl", """{"prompt": "p", "completion_a": "a", "completion_b": "b"}""", """{"prompt": "p", "completion_a": "a"}""");
        var (code, _, error) = Run("annotate", "serve", "--input", bad, "--db", Path.Combine(_models.Root, "b.db"), "--port", "0");
        Assert.Equal(2, code);
        Assert.Contains("bad.jsonl:2", error);
        Assert.Contains("completion_b", error);
    }

    [Fact]
    public void Raters_list_prints_every_link_and_a_taken_name_is_refused()
    {
        string db = Path.Combine(_models.Root, "c.db");
        Assert.Equal(0, Run("annotate", "raters", "add", "ann", "--db", db, "--url", "http://team.example:8080").Code);
        var (code, _, error) = Run("annotate", "raters", "add", "ann", "--db", db);
        Assert.Equal(2, code);
        Assert.Contains("already exists", error);
        var (listed, text, _) = Run("annotate", "raters", "list", "--db", db, "--url", "http://team.example:8080");
        Assert.Equal(0, listed);
        Assert.Contains("http://team.example:8080/dashboard#", text);
        Assert.Contains("ann: http://team.example:8080/r/ann#", text);
    }
}
