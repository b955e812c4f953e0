using Alignment.Tokenization;

namespace Alignment.Cli.Arguments;

/// <summary>The data files, how to read them, and TRL's length limits.</summary>
internal sealed class DataArguments : IArgumentGroup
{
    public Option<string?> Dataset { get; }
    readonly Option<string?> _evalDataset = CliOption.Text("eval-dataset", "Evaluation data (JSONL), evaluated every --eval-steps and at the end.", null, "eval_dataset_name");
    readonly Option<int?> _maxLength = CliOption.Int("max-length", "Prompt plus completion tokens; completions are cut to fit.", new TokenizationOptions().MaxLength);
    readonly Option<int?> _maxPromptLength = CliOption.Int("max-prompt-length", "Prompt tokens (the start is cut).", new TokenizationOptions().MaxPromptLength);
    readonly Option<int?> _maxCompletionLength = CliOption.Int("max-completion-length", "Completion tokens (the end is cut).", new TokenizationOptions().MaxCompletionLength);
    readonly Option<string?> _truncationMode = CliOption.Choice("truncation-mode", "Which end of a too-long prompt to keep.", "keep_end", ["keep_end", "keep_start"]);
    readonly Option<bool> _skipBadRows = CliOption.Flag("skip-bad-rows", "Skip malformed lines (reported) instead of stopping at the first.");
    readonly bool _evaluation, _lengths;

    /// <param name="description">What the dataset holds, for <c>--help</c>.</param>
    /// <param name="evaluation">Whether the command takes evaluation data.</param>
    /// <param name="lengths">Whether the command takes TRL's length limits.</param>
    public DataArguments(string description, bool evaluation = true, bool lengths = true)
    {
        Dataset = CliOption.Text("dataset", description, null, "dataset_name", "dataset-name");
        Dataset.Required = true;
        _evaluation = evaluation;
        _lengths = lengths;
    }

    public IEnumerable<Option> Options =>
        new Option?[] { Dataset, _evaluation ? _evalDataset : null, _skipBadRows }
            .Concat(_lengths ? [_maxLength, _maxPromptLength, _maxCompletionLength, _truncationMode] : []).OfType<Option>();

    /// <summary>The files, checked to exist, with the model's tokenizer and chat template and the length limits (validated).</summary>
    public DataSource Open(ParseResult parse, (ModelTokenizer Tokenizer, IChatTemplate? Template) tokenizer)
    {
        TokenizationOptions limits = Tokenization(parse);
        return new DataSource(TrainFile(parse), EvalFile(parse), ReadOptions(parse), limits, tokenizer);
    }

    /// <summary>The training data file, checked to exist.</summary>
    public string TrainFile(ParseResult parse) => Existing(parse.GetValue(Dataset)!, "dataset");

    /// <summary>The evaluation data file, checked to exist, or null.</summary>
    public string? EvalFile(ParseResult parse) => _evaluation && parse.GetValue(_evalDataset) is { } path ? Existing(path, "eval-dataset") : null;

    public DataReadOptions ReadOptions(ParseResult parse) => new() { SkipBadRows = parse.GetValue(_skipBadRows) };

    public TokenizationOptions Tokenization(ParseResult parse)
    {
        var options = new TokenizationOptions
        {
            MaxLength = parse.GetValue(_maxLength),
            MaxPromptLength = parse.GetValue(_maxPromptLength),
            MaxCompletionLength = parse.GetValue(_maxCompletionLength),
            PromptTruncation = parse.GetValue(_truncationMode) == "keep_start" ? TruncationMode.KeepStart : TruncationMode.KeepEnd,
        };
        options.Validate();
        return options;
    }

    static string Existing(string path, string option) =>
        File.Exists(path) ? path : throw new FileNotFoundException($"--{option}: no file at '{path}'.", path);
}
