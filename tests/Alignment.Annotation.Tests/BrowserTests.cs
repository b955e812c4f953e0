using Microsoft.Playwright;

namespace Alignment.Annotation.Tests;

/// <summary>Needs Debian's chromium: skipped where it is missing, unless <c>CI=true</c> (.ci/run installs it), where it fails.</summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public const string Executable = "/usr/bin/chromium";

    public ChromiumFactAttribute()
    {
        if (!File.Exists(Executable) && Environment.GetEnvironmentVariable("CI") != "true")
            Skip = $"browser tests skipped: no {Executable} (apt-get install chromium)";
    }
}

/// <summary>The real pages in headless Chromium, driven as a rater and a lead would.</summary>
public sealed class BrowserTests : IDisposable
{
    readonly Workspace _work = new();

    public void Dispose() => _work.Dispose();

    /// <summary>Where screenshots go: $ALIGNMENT_SCREENSHOTS (the README's images are made so), else the temp folder.</summary>
    string Screenshot(string name) => Path.Combine(Environment.GetEnvironmentVariable("ALIGNMENT_SCREENSHOTS") ?? _work.Root, name);

    /// <summary>Runs <paramref name="act"/> on a fresh page of headless Chromium, closed afterwards.</summary>
    static async Task InBrowser(Func<IPage, Task> act)
    {
        using IPlaywright playwright = await Playwright.CreateAsync();
        await using IBrowser browser = await playwright.Chromium.LaunchAsync(new() { ExecutablePath = ChromiumFactAttribute.Executable, Headless = true, Args = ["--no-sandbox"] });
        IPage page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1200, Height = 760 } });
        await act(page);
    }

    static async Task Ready(IPage page) => await page.WaitForSelectorAsync("body[data-ready='true']", new() { Timeout = 15_000 });

    static async Task<(string Item, string Left, string Right)> Shown(IPage page) => (
        (await page.GetAttributeAsync("body", "data-item"))!,
        await page.InnerTextAsync("#completion-0 .text"),
        await page.InnerTextAsync("#completion-1 .text"));

    static async Task Press(IPage page, string key)
    {
        await page.Keyboard.PressAsync(key);
        await Ready(page);
    }

    /// <summary>On the item whose completion holds markup: it shows as text, no script ran, no &lt;b&gt; element exists, and the fenced code is a code block.</summary>
    async Task<bool> CheckMarkup(IPage page, (string Item, string Left, string Right) shown)
    {
        if (!(shown.Left + shown.Right).Contains("print"))
            return false;
        Assert.Contains("<script>window.pwned = 1</script><b>bold?</b>", shown.Left + shown.Right);
        Assert.True(await page.EvaluateAsync<bool>("() => window.pwned === undefined"));
        Assert.Equal(0, await page.Locator(".text b").CountAsync());
        Assert.Equal("print('x')", await page.InnerTextAsync(".text pre code"));
        Assert.Equal("print", await page.InnerTextAsync(".text p code"));
        await page.ScreenshotAsync(new() { Path = Screenshot("annotation-rater.png") });
        return true;
    }

    [ChromiumFact]
    public async Task A_rater_votes_with_the_keyboard_undoes_reloads_and_continues()
    {
        string input = _work.File("c.jsonl",
            """{"prompt": "Say hi politely.", "completion_a": "Hi there!", "completion_b": "hello"}""",
            """{"prompt": "Print x in Python, and show **markup**.", "completion_a": "Use `print`:\n\n```python\nprint('x')\n```", "completion_b": "<script>window.pwned = 1</script><b>bold?</b> print x"}""",
            """{"prompt": "2 + 2?", "completion_a": "4", "completion_b": "5"}""");
        using var store = SqliteAnnotationStore.Open(Path.Combine(_work.Root, "a.db"), AnnotationMode.Pairwise, 1);
        store.Import(CandidateReader.Read(input, AnnotationMode.Pairwise));
        Rater ann = store.AddRater("ann");
        await using var server = await AnnotationServer.StartAsync(store, new AnnotationServerOptions { Port = 0 });
        await InBrowser(async page =>
        {
            await page.GotoAsync(server.RaterLink(ann));
            await Ready(page);
            var first = await Shown(page);
            string Letter(string text) => text.StartsWith("Hi there") || text.StartsWith("Use") || text == "4" ? "a" : "b";

            await Press(page, "ArrowLeft");
            Assert.Equal([(long.Parse(first.Item), Letter(first.Left))], store.Votes().Select(v => (v.ItemId, v.Choice)));
            Assert.NotEqual(first.Item, (await Shown(page)).Item);

            await Press(page, "u");
            Assert.Empty(store.Votes());
            Assert.Equal(first, await Shown(page));

            await page.ReloadAsync();
            await Ready(page);
            Assert.Equal(first, await Shown(page)); // the same item on the same sides after a reload

            bool markupSeen = await CheckMarkup(page, first);
            await Press(page, "ArrowRight");
            markupSeen |= await CheckMarkup(page, await Shown(page));
            await Press(page, "t");
            markupSeen |= await CheckMarkup(page, await Shown(page));
            await Press(page, "s");
            Assert.True(markupSeen);
            Assert.True(await page.IsVisibleAsync("#done"));
            Assert.Equal("3 / 3", await page.InnerTextAsync("#count"));
            var votes = store.Votes().Select(v => v.Choice).ToList();
            Assert.Equal([Letter(first.Right), "tie", "skip"], votes);
        });
    }

    [ChromiumFact]
    public async Task In_rating_mode_a_rater_scores_each_completion_1_to_5()
    {
        using var store = _work.Store(count: 2, labels: 1, mode: AnnotationMode.Rating);
        Rater ann = store.AddRater("ann");
        await using var server = await AnnotationServer.StartAsync(store, new AnnotationServerOptions { Port = 0 });
        await InBrowser(async page =>
        {
            await page.GotoAsync(server.RaterLink(ann));
            await Ready(page);
            long first = long.Parse((await page.GetAttributeAsync("body", "data-item"))!);
            Assert.Equal(3, await page.Locator(".completion").CountAsync());
            Assert.Equal(15, await page.Locator(".scores button").CountAsync());
            await page.ClickAsync("#completion-0 button[data-score='5']");
            await page.ClickAsync("#completion-1 button[data-score='2']");
            await page.Keyboard.PressAsync("Enter"); // one completion unscored: refused in the page
            Assert.Contains("Score every completion", await page.InnerTextAsync("#status"));
            Assert.Empty(store.Votes());
            await page.ClickAsync("#completion-2 button[data-score='4']");
            await page.ClickAsync("#completion-1 button[data-score='3']"); // changing one's mind
            await Press(page, "Enter");
            StoredVote vote = store.Votes().Single();
            Assert.Equal((first, "rated"), (vote.ItemId, vote.Choice));
            Assert.Equal([5, 3, 4], vote.Ratings!);
            Assert.NotEqual(first.ToString(), await page.GetAttributeAsync("body", "data-item"));
        });
    }

    [ChromiumFact]
    public async Task The_dashboard_shows_kappa_worked_out_by_hand_and_refuses_without_the_admin_token()
    {
        using var store = _work.Store(count: 10, labels: 2);
        Rater ann = store.AddRater("ann"), bob = store.AddRater("bob");
        // ann/bob: 4 × (a, a), 3 × (b, b), 2 × (a, b), 1 × (b, a). Cohen's κ: p_o = 0.7, p_e = 0.6·0.5 + 0.4·0.5 = 0.5 → 0.4.
        // Fleiss: P̄ = 7/10; a 11, b 9 of 20 → P̄_e = 0.3025 + 0.2025 = 0.505 → κ = 0.195 / 0.495 = 0.394.
        (string, string)[] labels = [.. Enumerable.Repeat(("a", "a"), 4), .. Enumerable.Repeat(("b", "b"), 3), ("a", "b"), ("a", "b"), ("b", "a")];
        for (int i = 0; i < labels.Length; i++)
        {
            store.Vote(ann, new StoredVote(i + 1, ann.Id, labels[i].Item1, null, true, 2 + i));
            store.Vote(bob, new StoredVote(i + 1, bob.Id, labels[i].Item2, null, i % 2 == 0, 3));
        }
        await using var server = await AnnotationServer.StartAsync(store, new AnnotationServerOptions { Port = 0 });
        await InBrowser(async page =>
        {
            await page.GotoAsync($"{server.Address}dashboard");
            await Ready(page);
            Assert.Contains("admin token", await page.InnerTextAsync("#error"));
            Assert.Equal(0, await page.Locator("#pairs tr").CountAsync());

            await page.GotoAsync(server.DashboardLink);
            await page.ReloadAsync(); // a new fragment alone does not load the page again
            await Ready(page);
            Assert.Equal("0.394", await page.InnerTextAsync("#fleiss"));
            Assert.Equal(["ann", "bob", "10", "0.400"], await page.Locator("#pairs tr").Nth(1).Locator("td").AllInnerTextsAsync());
            Assert.Equal(3, await page.Locator("#flagged tr").CountAsync() - 1); // the three split items: disagreement 0.5
            // A was on ann's left every time and she picked a 6 times of 10; her seconds 2…11 have median 6.5.
            Assert.Equal(["ann", "10", "0", "0", "0.600", "6.500"], await page.Locator("#raters tr").Nth(1).Locator("td").AllInnerTextsAsync());
            await page.ScreenshotAsync(new() { Path = Screenshot("annotation-dashboard.png"), FullPage = true });
        });
    }
}
