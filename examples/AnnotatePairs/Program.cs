// AnnotatePairs: label preference pairs by hand, side by side.
//
//   dotnet run --project examples/AnnotatePairs -- pairs.jsonl labelled.jsonl
//
// Input lines: {"prompt", "completion_a", "completion_b"} (or {"prompt", "chosen", "rejected"} to re-check labels).
// Keys: ← or L = left is better, → or R = right is better, T = tie, S = skip, Q = quit. Quit any time: running the
// same command again continues where you stopped. The output is pairwise JSONL that the trainers read directly.
using Alignment.Data;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: AnnotatePairs INPUT.jsonl OUTPUT.jsonl [--seed N]");
    return 2;
}
int seed = args.Length >= 4 && args[2] == "--seed" ? int.Parse(args[3]) : 0;
var session = new AnnotationSession(args[0], args[1], seed);
bool interactive = !Console.IsInputRedirected;
int width = interactive ? Math.Max(60, Console.WindowWidth) : 100;
int answered = 0;

foreach (AnnotationItem item in session.Pending())
{
    Show(item, width);
    HumanChoice? choice = interactive ? ReadKey() : ReadLine();
    if (choice is null)
        break; // quit: everything answered so far is already on disk
    session.Record(item, choice.Value);
    answered++;
}
Console.WriteLine($"{answered} answered this session; decisions in {session.OutputPath}, ties and skips in {session.UndecidedPath}.");
return 0;

static void Show(AnnotationItem item, int width)
{
    int column = (width - 3) / 2;
    Console.WriteLine(new string('=', width));
    Console.WriteLine($"[line {item.SourceLine}] {item.Prompt}");
    Console.WriteLine(new string('-', width));
    var left = Wrap(item.Left, column);
    var right = Wrap(item.Right, column);
    for (int i = 0; i < Math.Max(left.Count, right.Count); i++)
        Console.WriteLine($"{(i < left.Count ? left[i] : "").PadRight(column)} | {(i < right.Count ? right[i] : "")}");
    Console.WriteLine(new string('-', width));
    Console.Write("left (L/←), right (R/→), tie (T), skip (S), quit (Q)? ");
}

static List<string> Wrap(string text, int width)
{
    var lines = new List<string>();
    foreach (string paragraph in text.Replace("\r", "").Split('\n'))
    {
        var line = "";
        foreach (string word in paragraph.Split(' '))
        {
            if (line.Length > 0 && line.Length + 1 + word.Length > width)
            {
                lines.Add(line);
                line = "";
            }
            for (string rest = word; rest.Length > 0;)
            {
                string piece = rest.Length > width ? rest[..width] : rest;
                rest = rest[piece.Length..];
                line = line.Length == 0 ? piece : line + " " + piece;
                if (rest.Length > 0)
                {
                    lines.Add(line);
                    line = "";
                }
            }
        }
        lines.Add(line);
    }
    return lines;
}

static HumanChoice? ReadKey()
{
    while (true)
    {
        ConsoleKeyInfo key = Console.ReadKey(intercept: true);
        HumanChoice? choice = key.Key switch
        {
            ConsoleKey.LeftArrow or ConsoleKey.L => HumanChoice.Left,
            ConsoleKey.RightArrow or ConsoleKey.R => HumanChoice.Right,
            ConsoleKey.T => HumanChoice.Tie,
            ConsoleKey.S => HumanChoice.Skip,
            ConsoleKey.Q => null,
            _ => (HumanChoice?)(HumanChoice)(-1),
        };
        if (choice is null || Enum.IsDefined(choice.Value))
        {
            Console.WriteLine(choice?.ToString() ?? "quit");
            return choice;
        }
    }
}

static HumanChoice? ReadLine()
{
    while (Console.ReadLine() is { } line)
    {
        switch (line.Trim().ToLowerInvariant())
        {
            case "l" or "left": return HumanChoice.Left;
            case "r" or "right": return HumanChoice.Right;
            case "t" or "tie": return HumanChoice.Tie;
            case "s" or "skip": return HumanChoice.Skip;
            case "q" or "quit": return null;
        }
    }
    return null;
}
