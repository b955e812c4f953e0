using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;

namespace Alignment.Annotation;

/// <summary>
/// The embedded store: one SQLite file in WAL mode with full synchronisation, each write its own transaction committed
/// before the call returns, writes serialised within the process (one server per file), reads concurrent.
/// </summary>
public sealed class SqliteAnnotationStore : IAnnotationStore
{
    readonly string _connection;
    readonly Lock _write = new();

    SqliteAnnotationStore(string connection, AnnotationMode mode, int labels, string admin) =>
        (_connection, Mode, LabelsPerExample, AdminToken) = (connection, mode, labels, admin);

    /// <inheritdoc />
    public AnnotationMode Mode { get; }

    /// <inheritdoc />
    public int LabelsPerExample { get; }

    /// <inheritdoc />
    public string AdminToken { get; }

    /// <summary>The database file.</summary>
    public required string Path { get; init; }

    /// <summary>
    /// Opens the file, creating it when new. Until items are imported, the mode and labels per example given here
    /// replace the file's; afterwards the file keeps its own and asking for others is refused.
    /// </summary>
    /// <param name="path">The database file.</param>
    /// <param name="mode">Mode of a new store; null accepts the file's (pairwise for a new one).</param>
    /// <param name="labelsPerExample">Labels per item of a new store; null accepts the file's (3 for a new one).</param>
    /// <exception cref="ArgumentException">The settings differ from the file's, or labelsPerExample &lt; 1.</exception>
    public static SqliteAnnotationStore Open(string path, AnnotationMode? mode = null, int? labelsPerExample = null)
    {
        if (labelsPerExample is < 1)
            throw new ArgumentException($"labels-per-example must be >= 1, got {labelsPerExample}.", nameof(labelsPerExample));
        string connection = new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = true }.ToString();
        using var db = new SqliteConnection(connection);
        db.Open();
        Execute(db, """
            PRAGMA journal_mode = WAL;
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, line INTEGER NOT NULL, prompt TEXT NOT NULL, completions TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS raters (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, token TEXT NOT NULL UNIQUE);
            CREATE TABLE IF NOT EXISTS votes (id INTEGER PRIMARY KEY AUTOINCREMENT, item_id INTEGER NOT NULL REFERENCES items(id),
                rater_id INTEGER NOT NULL REFERENCES raters(id), choice TEXT NOT NULL, ratings TEXT, left_was_a INTEGER NOT NULL,
                seconds REAL NOT NULL, UNIQUE (item_id, rater_id));
            """);
        if (Meta(db, "admin_token") is null)
            Execute(db, "INSERT INTO meta VALUES ('mode', 'pairwise'), ('labels_per_example', '3'), ('admin_token', $t)", ("$t", NewToken()));
        // Until items are imported the settings follow whoever names them (raters may be added before the first serve).
        if (Query(db, "SELECT COUNT(*) FROM items", r => r.GetInt32(0))[0] == 0)
        {
            if (mode is { } newMode)
                Execute(db, "UPDATE meta SET value = $v WHERE key = 'mode'", ("$v", newMode.ToString().ToLowerInvariant()));
            if (labelsPerExample is { } newLabels)
                Execute(db, "UPDATE meta SET value = $v WHERE key = 'labels_per_example'", ("$v", newLabels.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }
        string storedMode = Meta(db, "mode")!, storedLabels = Meta(db, "labels_per_example")!;
        var actualMode = Enum.Parse<AnnotationMode>(storedMode, ignoreCase: true);
        int actualLabels = int.Parse(storedLabels!, System.Globalization.CultureInfo.InvariantCulture);
        if (mode is { } wanted && wanted != actualMode)
            throw new ArgumentException($"'{path}' is a {storedMode} store; --mode {wanted.ToString().ToLowerInvariant()} does not fit it.", nameof(mode));
        if (labelsPerExample is { } labels && labels != actualLabels)
            throw new ArgumentException($"'{path}' collects {actualLabels} labels per example; --labels-per-example {labels} does not fit it.", nameof(labelsPerExample));
        return new SqliteAnnotationStore(connection, actualMode, actualLabels, Meta(db, "admin_token")!) { Path = path };
    }

    /// <inheritdoc />
    public void Import(IReadOnlyList<Candidate> items)
    {
        lock (_write)
        {
            using var db = Connect();
            var stored = Items(db);
            if (stored.Count > 0)
            {
                bool same = stored.Count == items.Count && stored.Zip(items).All(p => Json(p.First.Prompt) == Json(p.Second.Prompt)
                    && Json(new JsonArray(p.First.Completions.Select(c => c.DeepClone()).ToArray())) == Json(new JsonArray(p.Second.Completions.Select(c => c.DeepClone()).ToArray())));
                if (!same)
                    throw new InvalidOperationException($"'{Path}' already holds {stored.Count} items from another input; use a new --db for new data.");
                return;
            }
            using var transaction = db.BeginTransaction();
            foreach (Candidate item in items)
                Execute(db, "INSERT INTO items VALUES ($id, $line, $prompt, $completions)", ("$id", item.Id), ("$line", item.Line),
                    ("$prompt", Json(item.Prompt)), ("$completions", Json(new JsonArray(item.Completions.Select(c => c.DeepClone()).ToArray()))));
            transaction.Commit();
        }
    }

    /// <inheritdoc />
    public IReadOnlyList<Candidate> Items()
    {
        using var db = Connect();
        return Items(db);
    }

    /// <inheritdoc />
    public Candidate? Item(long id)
    {
        using var db = Connect();
        return Query(db, "SELECT id, line, prompt, completions FROM items WHERE id = $id", ReadItem, ("$id", id)).FirstOrDefault();
    }

    /// <inheritdoc />
    public Rater AddRater(string name)
    {
        if (string.IsNullOrWhiteSpace(name) || name.Any(c => !(char.IsLetterOrDigit(c) || c is '-' or '_' or '.')))
            throw new ArgumentException($"A rater's name is letters, digits, '-', '_' or '.'; got '{name}'.", nameof(name));
        lock (_write)
        {
            using var db = Connect();
            if (RaterNamed(db, name) is not null)
                throw new ArgumentException($"A rater named '{name}' already exists.", nameof(name));
            Execute(db, "INSERT INTO raters (name, token) VALUES ($n, $t)", ("$n", name), ("$t", NewToken()));
            return RaterNamed(db, name)!;
        }
    }

    /// <inheritdoc />
    public IReadOnlyList<Rater> Raters()
    {
        using var db = Connect();
        return Query(db, "SELECT id, name, token FROM raters ORDER BY id", r => new Rater(r.GetInt64(0), r.GetString(1), r.GetString(2)));
    }

    /// <inheritdoc />
    public Rater? RaterNamed(string name)
    {
        using var db = Connect();
        return RaterNamed(db, name);
    }

    /// <summary>
    /// Items <c>i</c> rater <c>$r</c> may still label: not voted on by them (a skip counts as their vote) and short of
    /// <c>$n</c> labels (skips are not labels).
    /// </summary>
    const string OpenToRater = """
        NOT EXISTS (SELECT 1 FROM votes v WHERE v.item_id = i.id AND v.rater_id = $r)
          AND (SELECT COUNT(*) FROM votes v WHERE v.item_id = i.id AND v.choice <> 'skip') < $n
        """;

    /// <inheritdoc />
    public Candidate? Next(Rater rater)
    {
        using var db = Connect();
        // Each rater walks the items from an offset of their own, so that raters working at once rarely meet on one item.
        long? id = Query(db, $"""
            SELECT i.id FROM items i WHERE {OpenToRater}
            ORDER BY (i.id + $r * 7919) % ((SELECT COUNT(*) FROM items) + 1), i.id LIMIT 1
            """, r => (long?)r.GetInt64(0), ("$r", rater.Id), ("$n", LabelsPerExample)).FirstOrDefault();
        return id is null ? null : Item(id.Value);
    }

    /// <inheritdoc />
    public (int Done, int Remaining) Progress(Rater rater)
    {
        using var db = Connect();
        int done = Query(db, "SELECT COUNT(*) FROM votes WHERE rater_id = $r", r => r.GetInt32(0), ("$r", rater.Id))[0];
        int remaining = Query(db, $"SELECT COUNT(*) FROM items i WHERE {OpenToRater}", r => r.GetInt32(0), ("$r", rater.Id), ("$n", LabelsPerExample))[0];
        return (done, remaining);
    }

    /// <inheritdoc />
    public VoteOutcome Vote(Rater rater, StoredVote vote)
    {
        lock (_write)
        {
            using var db = Connect();
            using var transaction = db.BeginTransaction();
            if (Query(db, "SELECT COUNT(*) FROM items WHERE id = $i", r => r.GetInt32(0), ("$i", vote.ItemId))[0] == 0)
                return VoteOutcome.UnknownItem;
            if (Query(db, "SELECT COUNT(*) FROM votes WHERE item_id = $i AND rater_id = $r", r => r.GetInt32(0), ("$i", vote.ItemId), ("$r", rater.Id))[0] > 0)
                return VoteOutcome.AlreadyVoted;
            if (vote.Choice != "skip"
                && Query(db, "SELECT COUNT(*) FROM votes WHERE item_id = $i AND choice <> 'skip'", r => r.GetInt32(0), ("$i", vote.ItemId))[0] >= LabelsPerExample)
                return VoteOutcome.ItemFull;
            Execute(db, "INSERT INTO votes (item_id, rater_id, choice, ratings, left_was_a, seconds) VALUES ($i, $r, $c, $s, $l, $t)",
                ("$i", vote.ItemId), ("$r", rater.Id), ("$c", vote.Choice),
                ("$s", vote.Ratings is null ? DBNull.Value : JsonSerializer.Serialize(vote.Ratings)), ("$l", vote.LeftWasA ? 1 : 0), ("$t", vote.Seconds));
            transaction.Commit();
            return VoteOutcome.Accepted;
        }
    }

    /// <inheritdoc />
    public long? Undo(Rater rater)
    {
        lock (_write)
        {
            using var db = Connect();
            using var transaction = db.BeginTransaction();
            var last = Query(db, "SELECT id, item_id FROM votes WHERE rater_id = $r ORDER BY id DESC LIMIT 1",
                r => (Id: r.GetInt64(0), Item: r.GetInt64(1)), ("$r", rater.Id));
            if (last.Count == 0)
                return null;
            Execute(db, "DELETE FROM votes WHERE id = $id", ("$id", last[0].Id));
            transaction.Commit();
            return last[0].Item;
        }
    }

    /// <inheritdoc />
    public IReadOnlyList<StoredVote> Votes()
    {
        using var db = Connect();
        return Query(db, "SELECT item_id, rater_id, choice, ratings, left_was_a, seconds FROM votes ORDER BY id", r => new StoredVote(
            r.GetInt64(0), r.GetInt64(1), r.GetString(2), r.IsDBNull(3) ? null : JsonSerializer.Deserialize<int[]>(r.GetString(3)),
            r.GetInt64(4) != 0, r.GetDouble(5)));
    }

    /// <inheritdoc />
    public void Dispose() => SqliteConnection.ClearPool(new SqliteConnection(_connection));

    SqliteConnection Connect()
    {
        var db = new SqliteConnection(_connection);
        db.Open();
        Execute(db, "PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;");
        return db;
    }

    static Rater? RaterNamed(SqliteConnection db, string name) =>
        Query(db, "SELECT id, name, token FROM raters WHERE name = $n", r => new Rater(r.GetInt64(0), r.GetString(1), r.GetString(2)), ("$n", name)).FirstOrDefault();

    static List<Candidate> Items(SqliteConnection db) => Query(db, "SELECT id, line, prompt, completions FROM items ORDER BY id", ReadItem);

    static Candidate ReadItem(SqliteDataReader r) => new(r.GetInt64(0), r.GetInt64(1), JsonNode.Parse(r.GetString(2))!,
        JsonNode.Parse(r.GetString(3))!.AsArray().Select(c => c!.DeepClone()).ToList());

    static string Json(JsonNode node) => node.ToJsonString();

    static string NewToken() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    static string? Meta(SqliteConnection db, string key) =>
        Query(db, "SELECT value FROM meta WHERE key = $k", r => r.GetString(0), ("$k", key)).FirstOrDefault();

    static void Execute(SqliteConnection db, string sql, params (string Name, object Value)[] parameters)
    {
        using SqliteCommand command = Command(db, sql, parameters);
        command.ExecuteNonQuery();
    }

    static List<T> Query<T>(SqliteConnection db, string sql, Func<SqliteDataReader, T> read, params (string Name, object Value)[] parameters)
    {
        using SqliteCommand command = Command(db, sql, parameters);
        using SqliteDataReader reader = command.ExecuteReader();
        var rows = new List<T>();
        while (reader.Read())
            rows.Add(read(reader));
        return rows;
    }

    static SqliteCommand Command(SqliteConnection db, string sql, (string Name, object Value)[] parameters)
    {
        SqliteCommand command = db.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
            command.Parameters.AddWithValue(name, value);
        return command;
    }
}
