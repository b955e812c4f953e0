using Alignment.Tokenization;

namespace Alignment.Cli.Arguments;

/// <summary>
/// A command's data files, checked to exist, with the model folder's tokenizer and chat template: reads the training and
/// evaluation files into tokenized examples, counting what tokenization cut or dropped in each.
/// </summary>
internal sealed class DataSource(string trainFile, string? evalFile, DataReadOptions read, TokenizationOptions limits, (ModelTokenizer Tokenizer, IChatTemplate? Template) tokenizer)
{
    readonly (ModelTokenizer Tokenizer, IChatTemplate? Template) _tokenizer = tokenizer;

    public ModelTokenizer Tokenizer => _tokenizer.Tokenizer;

    public IChatTemplate? Template => _tokenizer.Template;

    /// <summary>The tokenizer's pad id, TRL's <c>padding_value</c> for the batches.</summary>
    public long PaddingValue => Tokenizer.PadTokenId ?? 0;

    public DataReadOptions Read => read;

    public TokenizationReport TrainReport { get; } = new();

    public TokenizationReport? EvalReport { get; } = evalFile is null ? null : new();

    /// <summary>What reading each file found: lines, skipped rows with their places, duplicates, chosen == rejected.</summary>
    public IReadOnlyDictionary<string, DataReadReport> ReadReports => _reads;

    readonly Dictionary<string, DataReadReport> _reads = [];

    PreferenceTokenizer? _tokenize;

    PreferenceTokenizer Tokenize => _tokenize ??= new(Tokenizer, Template, limits);

    /// <exception cref="InvalidDataException">A file has no usable pair, or every pair's chosen equals its rejected.</exception>
    public (List<TokenizedPair> Train, List<TokenizedPair>? Eval) Pairs() =>
        Both((path, report, counts) => Tokenize.TokenizeAll(PreferenceData.ReadPairs(path, read, report), counts), pairs: true);

    public (List<TokenizedCompletion> Train, List<TokenizedCompletion>? Eval) Sft() =>
        Both((path, report, counts) => PreferenceFormats.ReadSft(path, read, report).Select(e => Tokenize.Tokenize(e, counts)).OfType<TokenizedCompletion>());

    public (List<TokenizedCompletion> Train, List<TokenizedCompletion>? Eval) Unpaired() =>
        Both((path, report, counts) => PreferenceFormats.ReadUnpaired(path, read, report).Select(e => Tokenize.Tokenize(e, counts)).OfType<TokenizedCompletion>());

    /// <summary>SFT examples of another file (for mixing), tokenized like the rest.</summary>
    public List<TokenizedCompletion> SftFrom(string path) =>
        Checked(path, false, report => PreferenceFormats.ReadSft(path, read, report).Select(e => Tokenize.Tokenize(e, new TokenizationReport())).OfType<TokenizedCompletion>());

    (List<T>, List<T>?) Both<T>(Func<string, DataReadReport, TokenizationReport, IEnumerable<T>> load, bool pairs = false) =>
        (Checked(trainFile, pairs, report => load(trainFile, report, TrainReport)),
         evalFile is null ? null : Checked(evalFile, pairs, report => load(evalFile, report, EvalReport!)));

    List<T> Checked<T>(string path, bool pairs, Func<DataReadReport, IEnumerable<T>> load)
    {
        var report = new DataReadReport();
        List<T> rows = load(report).ToList();
        _reads[path] = report;
        if (rows.Count == 0)
            throw new InvalidDataException($"'{path}' holds no usable example ({report.LinesRead} lines read, {report.Skipped} skipped).");
        if (pairs && report.ChosenEqualsRejected == report.RecordsProduced)
            throw new InvalidDataException($"'{path}': in every pair the chosen completion equals the rejected one; there is no preference to learn.");
        return rows;
    }
}
