using Alignment.Tokenization;

namespace Alignment.Cli.Arguments;

/// <summary>
/// A command's data files, checked to exist, with the model folder's tokenizer and chat template: reads the training and
/// evaluation files into tokenized examples, counting what tokenization cut or dropped in each.
/// </summary>
internal sealed class DataSource(string trainFile, string? evalFile, DataReadOptions read, TokenizationOptions limits, string modelFolder)
{
    readonly (ModelTokenizer Tokenizer, IChatTemplate? Template) _tokenizer = ModelArguments.TokenizerOf(modelFolder);

    public ModelTokenizer Tokenizer => _tokenizer.Tokenizer;

    public IChatTemplate? Template => _tokenizer.Template;

    /// <summary>The tokenizer's pad id, TRL's <c>padding_value</c> for the batches.</summary>
    public long PaddingValue => Tokenizer.PadTokenId ?? 0;

    public DataReadOptions Read => read;

    public TokenizationReport TrainReport { get; } = new();

    public TokenizationReport? EvalReport { get; } = evalFile is null ? null : new();

    PreferenceTokenizer? _tokenize;

    PreferenceTokenizer Tokenize => _tokenize ??= new(Tokenizer, Template, limits);

    public (List<TokenizedPair> Train, List<TokenizedPair>? Eval) Pairs() =>
        Both((path, counts) => Tokenize.TokenizeAll(PreferenceData.ReadPairs(path, read), counts));

    public (List<TokenizedCompletion> Train, List<TokenizedCompletion>? Eval) Sft() =>
        Both((path, counts) => PreferenceFormats.ReadSft(path, read).Select(e => Tokenize.Tokenize(e, counts)).OfType<TokenizedCompletion>());

    public (List<TokenizedCompletion> Train, List<TokenizedCompletion>? Eval) Unpaired() =>
        Both((path, counts) => PreferenceFormats.ReadUnpaired(path, read).Select(e => Tokenize.Tokenize(e, counts)).OfType<TokenizedCompletion>());

    /// <summary>SFT examples of another file (for mixing), tokenized like the rest.</summary>
    public List<TokenizedCompletion> SftFrom(string path) =>
        PreferenceFormats.ReadSft(path, read).Select(e => Tokenize.Tokenize(e, new TokenizationReport())).OfType<TokenizedCompletion>().ToList();

    (List<T>, List<T>?) Both<T>(Func<string, TokenizationReport, IEnumerable<T>> load) =>
        (load(trainFile, TrainReport).ToList(), evalFile is null ? null : load(evalFile, EvalReport!).ToList());
}
