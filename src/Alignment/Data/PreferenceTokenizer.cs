using Alignment.Tokenization;

namespace Alignment.Data;

/// <summary>Which end of a too-long sequence to keep.</summary>
public enum TruncationMode
{
    /// <summary>Keep the first tokens (TRL's <c>keep_start</c>; the default for completions).</summary>
    KeepStart,

    /// <summary>Keep the last tokens (TRL's <c>keep_end</c>; the default for prompts).</summary>
    KeepEnd,
}

/// <summary>Length limits, named as in TRL's configs.</summary>
public sealed record TokenizationOptions
{
    /// <summary><c>max_length</c>: prompt plus completion; completions are cut to fit. 1024 as in TRL, so a default run is bounded; null = no limit.</summary>
    public int? MaxLength { get; init; } = 1024;

    /// <summary><c>max_prompt_length</c>. Null = no limit.</summary>
    public int? MaxPromptLength { get; init; }

    /// <summary><c>max_completion_length</c>. Null = no limit.</summary>
    public int? MaxCompletionLength { get; init; }

    /// <summary>How prompts are cut.</summary>
    public TruncationMode PromptTruncation { get; init; } = TruncationMode.KeepEnd;

    /// <summary>How completions are cut.</summary>
    public TruncationMode CompletionTruncation { get; init; } = TruncationMode.KeepStart;

    /// <summary>Checks the values.</summary>
    /// <exception cref="ArgumentException">A limit is not positive; the message names it.</exception>
    public void Validate() => new OptionErrors()
        .Check(MaxLength is not < 2, $"max_length must be >= 2, got {MaxLength}.")
        .Check(MaxPromptLength is not < 1, $"max_prompt_length must be >= 1, got {MaxPromptLength}.")
        .Check(MaxCompletionLength is not < 1, $"max_completion_length must be >= 1, got {MaxCompletionLength}.")
        .ThrowIfAny();
}

/// <summary>A pair as token ids, ready to collate.</summary>
public sealed record TokenizedPair(int[] Prompt, int[] Chosen, int[] Rejected, SourceLocation Source)
{
    /// <summary>The pair's reward margin from the data, or null.</summary>
    public double? Margin { get; init; }
}

/// <summary>One completion as token ids (SFT or unpaired data); <see cref="Desirable"/> is the KTO label, true for SFT.</summary>
public sealed record TokenizedCompletion(int[] Prompt, int[] Completion, bool Desirable, SourceLocation Source);

/// <summary>Counts of what tokenization cut or dropped.</summary>
public sealed class TokenizationReport
{
    /// <summary>Pairs tokenized (kept).</summary>
    public long Kept { get; internal set; }

    /// <summary>Pairs whose prompt was cut.</summary>
    public long PromptsTruncated { get; internal set; }

    /// <summary>Pairs with at least one completion cut.</summary>
    public long CompletionsTruncated { get; internal set; }

    /// <summary>Pairs dropped because the prompt leaves no room for a completion within <c>max_length</c>.</summary>
    public long Dropped { get; internal set; }

    /// <summary>The first dropped pairs' locations.</summary>
    public List<SourceLocation> DroppedExamples { get; } = [];

    /// <inheritdoc />
    public override string ToString() => Describe("pairs");

    /// <summary>The counts, calling what was tokenized <paramref name="unit"/> ("pairs", "examples", …).</summary>
    public string Describe(string unit) =>
        $"{Kept} {unit} kept, {PromptsTruncated} prompts truncated, {CompletionsTruncated} with completions truncated, {Dropped} dropped" +
        (DroppedExamples.Count > 0 ? " (first at " + string.Join(", ", DroppedExamples) + ")" : "");
}

/// <summary>
/// Turns preference records into token ids with the prompt/completion boundary where the full text puts it.
/// Standard (text) pairs: prompt and completions encoded as content, the completions followed by the EOS token, no BOS
/// added (as TRL for decoder-only models). Conversational pairs: the chat template renders prompt (with its generation
/// header) and completion, split so that prompt ids + completion ids equal the whole conversation's ids; the template's
/// end-of-turn token ends the completion. Pre-tokenized pairs are used as they are. Then the length limits apply.
/// </summary>
public sealed class PreferenceTokenizer
{
    const int ReportedDrops = 10;
    readonly ModelTokenizer _tokenizer;
    readonly IChatTemplate? _template;
    readonly TokenizationOptions _options;

    /// <summary>Creates the tokenizer.</summary>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="template">The chat template for conversational data; null when the data is text only.</param>
    /// <param name="options">Length limits.</param>
    public PreferenceTokenizer(ModelTokenizer tokenizer, IChatTemplate? template, TokenizationOptions? options = null)
    {
        _tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        _template = template;
        _options = options ?? new TokenizationOptions();
        _options.Validate();
    }

    /// <summary>Tokenizes one record, or returns null (and counts it) when the limits leave no room for a completion.</summary>
    /// <exception cref="DataFormatException">A conversational record without a template, or a text pair when the tokenizer has no EOS token.</exception>
    public TokenizedPair? Tokenize(PreferenceRecord record, TokenizationReport report)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(report);
        var (prompt, chosen, rejected) = record switch
        {
            PretokenizedPair ids => (ids.Prompt, ids.Chosen, ids.Rejected),
            PreferencePair pair => Encode(pair),
            _ => throw new ArgumentException($"Unknown record type {record.GetType().Name}.", nameof(record)),
        };
        TokenizedPair? limited = Limit(prompt, chosen, rejected, record.Source, report);
        return limited is not null && record is PreferencePair { Margin: { } margin } ? limited with { Margin = margin } : limited;
    }

    /// <summary>Tokenizes a stream of records, skipping (and counting) the dropped ones.</summary>
    public IEnumerable<TokenizedPair> TokenizeAll(IEnumerable<PreferenceRecord> records, TokenizationReport report)
    {
        foreach (PreferenceRecord record in records)
            if (Tokenize(record, report) is { } pair)
                yield return pair;
    }

    /// <summary>Tokenizes an unpaired (KTO) record, or returns null (and counts it) when the limits leave no room.</summary>
    public TokenizedCompletion? Tokenize(UnpairedRecord record, TokenizationReport report)
    {
        ArgumentNullException.ThrowIfNull(record);
        return record switch
        {
            PretokenizedUnpaired ids => LimitSingle(ids.Prompt, ids.Completion, ids.Desirable, ids.Source, report),
            UnpairedExample example => LimitSingle(EncodeSingle(example.Prompt, example.Completion, example.Source), example.Desirable, example.Source, report),
            _ => throw new ArgumentException($"Unknown record type {record.GetType().Name}.", nameof(record)),
        };
    }

    /// <summary>Tokenizes an SFT example (labelled desirable), or returns null (and counts it) when the limits leave no room.</summary>
    public TokenizedCompletion? Tokenize(SftExample example, TokenizationReport report)
    {
        ArgumentNullException.ThrowIfNull(example);
        return LimitSingle(EncodeSingle(example.Prompt, example.Completion, example.Source), true, example.Source, report);
    }

    (int[] Prompt, int[] Completion) EncodeSingle(Content prompt, Content completion, SourceLocation source)
    {
        var (p, c, _) = Encode(new PreferencePair(prompt, completion, completion, source));
        return (p, c);
    }

    TokenizedCompletion? LimitSingle((int[] Prompt, int[] Completion) ids, bool desirable, SourceLocation source, TokenizationReport report) =>
        LimitSingle(ids.Prompt, ids.Completion, desirable, source, report);

    TokenizedCompletion? LimitSingle(int[] prompt, int[] completion, bool desirable, SourceLocation source, TokenizationReport report) =>
        Limit(prompt, completion, completion, source, report) is { } limited
            ? new TokenizedCompletion(limited.Prompt, limited.Chosen, desirable, source)
            : null;

    (int[], int[], int[]) Encode(PreferencePair pair)
    {
        if (pair.Prompt.IsConversational || pair.Chosen.IsConversational)
        {
            IChatTemplate template = _template ?? throw new DataFormatException(pair.Source, "prompt",
                "is a conversation, but no chat template was given to tokenize it (the model folder has none: name one with ChatTemplates.Load, or --chat-template-path in align).");
            var (prompt, chosen) = _tokenizer.EncodeChat(template, pair.Prompt.Messages!, pair.Chosen.Messages!);
            var (promptAgain, rejected) = _tokenizer.EncodeChat(template, pair.Prompt.Messages!, pair.Rejected.Messages!);
            if (!prompt.AsSpan().SequenceEqual(promptAgain))
                throw new DataFormatException(pair.Source, "prompt", "tokenizes differently before the chosen and the rejected completion.");
            return (prompt, chosen, rejected);
        }
        int eos = _tokenizer.EosTokenIds.Count > 0 ? _tokenizer.EosTokenIds[0]
            : throw new DataFormatException(pair.Source, null, "the tokenizer has no EOS token to end text completions with.");
        int[] Completion(Content c) => [.. _tokenizer.EncodeContent(c.Text!), eos];
        return (_tokenizer.EncodeContent(pair.Prompt.Text!).ToArray(), Completion(pair.Chosen), Completion(pair.Rejected));
    }

    TokenizedPair? Limit(int[] prompt, int[] chosen, int[] rejected, SourceLocation source, TokenizationReport report)
    {
        if (_options.MaxPromptLength is { } maxPrompt && prompt.Length > maxPrompt)
        {
            prompt = Cut(prompt, maxPrompt, _options.PromptTruncation);
            report.PromptsTruncated++;
        }
        int? completionLimit = _options.MaxCompletionLength;
        if (_options.MaxLength is { } maxLength)
        {
            int room = maxLength - prompt.Length;
            if (room < 1)
            {
                report.Dropped++;
                if (report.DroppedExamples.Count < ReportedDrops)
                    report.DroppedExamples.Add(source);
                return null;
            }
            completionLimit = Math.Min(completionLimit ?? room, room);
        }
        if (completionLimit is { } limit && (chosen.Length > limit || rejected.Length > limit))
        {
            chosen = Cut(chosen, limit, _options.CompletionTruncation);
            rejected = Cut(rejected, limit, _options.CompletionTruncation);
            report.CompletionsTruncated++;
        }
        report.Kept++;
        return new TokenizedPair(prompt, chosen, rejected, source);
    }

    static int[] Cut(int[] ids, int length, TruncationMode mode) =>
        ids.Length <= length ? ids : mode == TruncationMode.KeepStart ? ids[..length] : ids[^length..];
}
