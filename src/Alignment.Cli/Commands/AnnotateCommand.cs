using Alignment.Annotation;

namespace Alignment.Cli.Commands;

/// <summary>
/// <c>align annotate serve|raters|export</c>: collect preferences from a team in the browser (several raters per item,
/// agreement on a dashboard) and export the majority as preference pairs.
/// </summary>
internal static class AnnotateCommand
{
    public static Command Create(CliContext context)
    {
        var command = new Command("annotate", "Collect preferences from people in a web page: serve, add raters, export the majority as pairs.");
        command.Subcommands.Add(Serve(context));
        command.Subcommands.Add(Raters(context));
        command.Subcommands.Add(Export(context));
        return command;
    }

    static Option<string?> Db()
    {
        var db = CliOption.Text("db", "The SQLite file that holds items, raters and votes (created when absent).", null);
        db.Required = true;
        return db;
    }

    static Option<double?> Threshold() => CliOption.Double("disagreement-threshold", "Items whose disagreement exceeds it are flagged.", 0.25);

    static Command Serve(CliContext context)
    {
        var input = CliOption.Text("input", "Candidates JSONL: {prompt, completion_a, completion_b} or {prompt, completions: [...]}.", null);
        input.Required = true;
        var db = Db();
        var labels = CliOption.Int("labels-per-example", "Different raters per item.", null);
        var mode = CliOption.Choice("mode", "pairwise (A/B/tie) or rating (1–5 per completion).", "pairwise", ["pairwise", "rating"]);
        var host = CliOption.Text("host", "Address to listen on (loopback by default).", "127.0.0.1");
        var port = CliOption.Int("port", "Port (0 picks a free one).", 5000);
        var threshold = Threshold();
        var serve = CliCommand.New("serve", "Serve the annotation page to the raters and the dashboard to the lead until Ctrl+C.", input, db, labels, mode, host, port, threshold);
        serve.SetAction(parse =>
        {
            var annotationMode = parse.GetValue(mode) == "rating" ? AnnotationMode.Rating : AnnotationMode.Pairwise;
            IReadOnlyList<Candidate> items = CandidateReader.Read(parse.GetValue(input)!, annotationMode);
            using var store = SqliteAnnotationStore.Open(parse.GetValue(db)!, annotationMode, parse.GetValue(labels));
            store.Import(items);
            var options = new AnnotationServerOptions
            {
                Host = parse.GetValue(host)!, Port = parse.GetValue(port)!.Value, DisagreementThreshold = parse.GetValue(threshold)!.Value,
            };
            var server = AnnotationServer.StartAsync(store, options, context.Cancel).GetAwaiter().GetResult();
            try
            {
                context.Output.WriteLine($"Listening on {server.Address} ({items.Count} items, {store.LabelsPerExample} labels each, {annotationMode.ToString().ToLowerInvariant()}).");
                context.Output.WriteLine($"dashboard: {server.DashboardLink}");
                foreach (Rater rater in store.Raters())
                    context.Output.WriteLine($"{rater.Name}: {server.RaterLink(rater)}");
                if (store.Raters().Count == 0)
                    context.Output.WriteLine($"No raters yet: align annotate raters add NAME --db {store.Path}");
                context.Output.Flush();
                server.WaitAsync(context.Cancel).GetAwaiter().GetResult();
            }
            finally
            {
                server.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
            return 0;
        });
        return serve;
    }

    static Command Raters(CliContext context)
    {
        var raters = new Command("raters", "Add or list raters.");
        var name = new Argument<string>("name") { Description = "The rater's name (letters, digits, '-', '_', '.')." };
        var db = Db();
        var url = CliOption.Text("url", "The server's address, for the printed link.", "http://127.0.0.1:5000/");
        var add = CliCommand.New("add", "Create a rater and print their personal link (its secret token lets them vote as themselves).", db, url);
        add.Arguments.Add(name);
        add.SetAction(parse =>
        {
            using var store = SqliteAnnotationStore.Open(parse.GetValue(db)!);
            Rater rater = store.AddRater(parse.GetValue(name)!);
            context.Output.WriteLine($"{rater.Name}: {Link(parse.GetValue(url)!)}r/{Uri.EscapeDataString(rater.Name)}#{rater.Token}");
            return 0;
        });
        var listDb = Db();
        var listUrl = CliOption.Text("url", "The server's address, for the printed links.", "http://127.0.0.1:5000/");
        var list = CliCommand.New("list", "Print every rater's link and the dashboard's.", listDb, listUrl);
        list.SetAction(parse =>
        {
            using var store = SqliteAnnotationStore.Open(parse.GetValue(listDb)!);
            string root = Link(parse.GetValue(listUrl)!);
            context.Output.WriteLine($"dashboard: {root}dashboard#{store.AdminToken}");
            foreach (Rater rater in store.Raters())
                context.Output.WriteLine($"{rater.Name}: {root}r/{Uri.EscapeDataString(rater.Name)}#{rater.Token}");
            return 0;
        });
        raters.Subcommands.Add(add);
        raters.Subcommands.Add(list);
        return raters;
    }

    static Command Export(CliContext context)
    {
        var db = Db();
        var output = CliOption.Text("out", "Preference pairs JSONL for align dpo (replaced only when complete).", null, "output");
        output.Required = true;
        var threshold = Threshold();
        var exclude = CliOption.Flag("exclude-flagged", "Leave out pairs whose disagreement exceeds the threshold.");
        var export = CliCommand.New("export", "Write the majority of each labelled item as preference pairs with agreement fields.", db, output, threshold, exclude);
        export.SetAction(parse =>
        {
            string path = parse.GetValue(db)!;
            if (!File.Exists(path))
                throw new FileNotFoundException($"--db: no annotation database at '{path}'.", path);
            using var store = SqliteAnnotationStore.Open(path);
            ExportReport report = AnnotationExport.Write(store, parse.GetValue(output)!, parse.GetValue(threshold)!.Value, parse.GetValue(exclude));
            context.Output.WriteLine($"{report.Pairs} pairs → {parse.GetValue(output)} ({report.Flagged} flagged{(parse.GetValue(exclude) ? ", left out" : "")}; {report.NoMajority} items without a majority)");
            return 0;
        });
        return export;
    }

    static string Link(string url) => url.EndsWith('/') ? url : url + "/";
}
