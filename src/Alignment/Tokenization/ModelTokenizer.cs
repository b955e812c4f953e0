using System.Text;
using Microsoft.ML.Tokenizers;

namespace Alignment.Tokenization;

/// <summary>
/// A model folder's tokenizer. User text is content, never control: <see cref="EncodeContent"/> encodes a string such as
/// <c>&lt;|im_start|&gt;</c> found in a prompt as ordinary text, because the underlying tokenizer is built without the
/// special tokens; only <see cref="Segment.Special"/> segments (which chat templates emit) become special ids. Added
/// tokens that are not special (Qwen3's <c>&lt;think&gt;</c>, Gemma's runs of newlines) are matched in content too, as
/// Hugging Face matches them.
/// </summary>
public sealed class ModelTokenizer
{
    readonly IContentEncoder _content;
    readonly Dictionary<string, int> _special;
    readonly Dictionary<int, string> _specialById;
    readonly HashSet<int> _plainAddedIds;
    readonly TokenMatcher _plainAdded;

    internal ModelTokenizer(IContentEncoder content, Dictionary<string, int> special, string kind, IReadOnlyCollection<string>? plainAdded = null)
    {
        _content = content;
        _special = special;
        _specialById = special.GroupBy(kv => kv.Value).ToDictionary(g => g.Key, g => g.First().Key);
        Kind = kind;
        plainAdded ??= [];
        _plainAddedIds = [.. plainAdded.Select(t => special[t])];
        _plainAdded = new TokenMatcher(plainAdded);
    }

    /// <summary>
    /// A tiktoken encoding (<c>cl100k_base</c>, <c>o200k_base</c>, …), whose vocabulary package
    /// (<c>Microsoft.ML.Tokenizers.Data.Cl100kBase</c>, …) the application references. Microsoft.ML.Tokenizers' tiktoken
    /// always turns special-token text into special ids; this wrapper encodes such text as plain text instead.
    /// </summary>
    /// <param name="encoding">The encoding name.</param>
    /// <param name="eosToken">The token that ends a completion.</param>
    /// <exception cref="InvalidOperationException">The encoding is unknown or its data package is not referenced.</exception>
    public static ModelTokenizer FromTiktoken(string encoding, string eosToken = "<|endoftext|>")
    {
        TiktokenTokenizer tiktoken;
        try
        {
            tiktoken = TiktokenTokenizer.CreateForEncoding(encoding);
        }
        catch (Exception e) when (e is ArgumentException or FileNotFoundException or InvalidOperationException or NotSupportedException)
        {
            throw new InvalidOperationException(
                $"The tiktoken encoding '{encoding}' could not be created; reference its data package (for example Microsoft.ML.Tokenizers.Data.Cl100kBase). {e.Message}", e);
        }
        var special = tiktoken.SpecialTokens?.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal) ?? [];
        int? eosId = special.TryGetValue(eosToken, out int id) ? id : null;
        return new ModelTokenizer(new PreTokenizedEncoder(tiktoken, null, special.Keys), special, $"tiktoken ({encoding})")
        {
            EosToken = eosId is null ? null : eosToken,
            EosTokenIds = eosId is { } e2 ? [e2] : [],
        };
    }

    /// <summary><c>tokenizer.json (BPE)</c> (byte-level), <c>tokenizer.json (BPE, byte fallback)</c> or <c>tokenizer.model (SentencePiece)</c>.</summary>
    public string Kind { get; }

    /// <summary>Special (and added) tokens by string.</summary>
    public IReadOnlyDictionary<string, int> SpecialTokens => _special;

    /// <summary><c>bos_token</c> from tokenizer_config.json, or null.</summary>
    public string? BosToken { get; internal init; }

    /// <summary><c>eos_token</c> from tokenizer_config.json, or null.</summary>
    public string? EosToken { get; internal init; }

    /// <summary><c>unk_token</c> from tokenizer_config.json, or null.</summary>
    public string? UnkToken { get; internal init; }

    /// <summary><c>pad_token</c> from tokenizer_config.json, or null.</summary>
    public string? PadToken { get; internal init; }

    /// <summary>The folder the tokenizer was read from, or null (tiktoken).</summary>
    public string? SourceFolder { get; internal init; }

    /// <summary>
    /// Checks that every special token and the BOS, EOS and pad ids lie in a model's vocabulary, so that the tokenizer
    /// can be used with that model.
    /// </summary>
    /// <param name="vocabSize">The model's <c>vocab_size</c>.</param>
    /// <exception cref="InvalidDataException">An id lies outside; the message names the tokenizer's folder and the token.</exception>
    public void EnsureFits(long vocabSize)
    {
        var ids = _special.Select(kv => (Token: kv.Key, Id: (long)kv.Value))
            .Concat(EosTokenIds.Select(id => (Token: "eos_token_id", Id: (long)id)));
        foreach (var (token, id) in ids)
            if (id < 0 || id >= vocabSize)
                throw new InvalidDataException($"The tokenizer{(SourceFolder is null ? "" : $" of '{SourceFolder}'")} gives '{token}' the id {id}, outside " +
                    $"the model's vocabulary [0, {vocabSize}) (vocab_size in config.json): this tokenizer does not belong to this model.");
    }

    /// <summary>Id of <see cref="BosToken"/>.</summary>
    public int? BosTokenId => BosToken is null ? null : SpecialId(BosToken);

    /// <summary>Ids that end generation: <see cref="EosToken"/> and generation_config.json's <c>eos_token_id</c>.</summary>
    public IReadOnlyList<int> EosTokenIds { get; internal init; } = [];

    /// <summary>Id of <see cref="PadToken"/>, else of <see cref="EosToken"/> (the usual fallback), else null.</summary>
    public int? PadTokenId => PadToken is not null ? SpecialId(PadToken) : EosToken is not null ? SpecialId(EosToken) : null;

    /// <summary>The Jinja source of the model's chat template (tokenizer_config.json or chat_template.jinja), or null.</summary>
    public string? ChatTemplateSource { get; internal init; }

    /// <summary>Loads <c>tokenizer.json</c> (byte-level BPE, or BPE with byte fallback) or, without one, <c>tokenizer.model</c>
    /// (SentencePiece BPE) from a model folder, with special tokens from tokenizer_config.json and generation_config.json.</summary>
    /// <exception cref="FileNotFoundException">The folder has neither tokenizer file.</exception>
    /// <exception cref="InvalidDataException">A file is malformed or uses a feature this library does not implement; the message names it.</exception>
    public static ModelTokenizer FromFolder(string folder) => TokenizerFiles.Load(folder);

    /// <summary>Encodes text as content: special-token strings inside it stay plain text.</summary>
    public IReadOnlyList<int> EncodeContent(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return text.Length == 0 ? [] : EncodeText(text, atStart: true);
    }

    /// <summary>Content, cut at the added tokens that are not special (each its id), the text between them encoded by the model.</summary>
    IReadOnlyList<int> EncodeText(string text, bool atStart)
    {
        if (_plainAdded.IsEmpty)
            return _content.Encode(text, atStart);
        var ids = new List<int>();
        foreach (var (piece, token) in _plainAdded.Split(text))
        {
            if (token is not null)
                ids.Add(_special[token]);
            else
                ids.AddRange(_content.Encode(piece, atStart && ids.Count == 0));
        }
        return ids;
    }

    /// <summary>
    /// Encodes segments in order: special segments that are special tokens of this tokenizer as their ids, everything else
    /// as text, adjacent text joined first (a template marker that is not a special token, such as Zephyr's
    /// <c>&lt;|user|&gt;</c>, is text here exactly as when Hugging Face tokenizes the rendered template).
    /// </summary>
    public List<int> Encode(IEnumerable<Segment> segments)
    {
        ArgumentNullException.ThrowIfNull(segments);
        var ids = new List<int>();
        var resolved = segments.Select(s => s.IsSpecial && !IsSpecial(s.Text) ? Segment.Content(s.Text) : s);
        foreach (Segment segment in ChatTemplates.Flatten(resolved))
        {
            if (segment.IsSpecial)
                ids.Add(SpecialId(segment.Text));
            else
                ids.AddRange(EncodeText(segment.Text, atStart: ids.Count == 0));
        }
        return ids;
    }

    /// <summary>
    /// Encodes a prompt (with the template's generation header) and its completion so that prompt ids followed by
    /// completion ids are exactly the ids of the whole rendered conversation: the completion is what the conversation's
    /// ids add after the prompt's. Works for every tokenizer kind, including SentencePiece, whose dummy prefix would
    /// otherwise differ when a template joins prompt and completion inside one text run (Llama 2's <c>[/INST] answer</c>).
    /// </summary>
    /// <exception cref="InvalidDataException">The prompt's ids are not a prefix of the conversation's (the tokenizer merges across the boundary).</exception>
    public (int[] Prompt, int[] Completion) EncodeChat(IChatTemplate template, IReadOnlyList<ChatMessage> prompt, ChatMessage completion) =>
        EncodeChat(template, prompt, [completion]);

    /// <summary>As <see cref="EncodeChat(IChatTemplate, IReadOnlyList{ChatMessage}, ChatMessage)"/>, for a completion of several messages.</summary>
    public (int[] Prompt, int[] Completion) EncodeChat(IChatTemplate template, IReadOnlyList<ChatMessage> prompt, IReadOnlyList<ChatMessage> completion)
    {
        ArgumentNullException.ThrowIfNull(template);
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(completion);
        var (promptSegments, _) = ChatTemplates.Split(template, prompt, completion);
        int[] promptIds = Encode(promptSegments).ToArray();
        int[] fullIds = Encode(template.Render([.. prompt, .. completion], addGenerationPrompt: false)).ToArray();
        if (fullIds.Length < promptIds.Length || !fullIds.AsSpan(0, promptIds.Length).SequenceEqual(promptIds))
            throw new InvalidDataException(
                $"With the {template.Name} template, the prompt's {promptIds.Length} tokens are not a prefix of the conversation's tokens: the tokenizer merges across the prompt/completion boundary.");
        return (promptIds, fullIds[promptIds.Length..]);
    }

    /// <summary>The id of a special token.</summary>
    /// <exception cref="ArgumentException">Not a special token of this tokenizer.</exception>
    public int SpecialId(string token) => _special.TryGetValue(token, out int id) ? id
        : throw new ArgumentException($"'{token}' is not a special token of this tokenizer.", nameof(token));

    /// <summary>Whether <paramref name="token"/> is one of this tokenizer's special tokens.</summary>
    public bool IsSpecial(string token) => _special.ContainsKey(token);

    /// <summary>Decodes ids to text; special tokens appear as their strings unless skipped (added tokens that are not special always appear).</summary>
    public string Decode(IEnumerable<long> ids, bool skipSpecialTokens = false)
    {
        var text = new StringBuilder();
        var run = new List<int>();
        void Flush()
        {
            if (run.Count > 0)
                text.Append(_content.Decode(run));
            run.Clear();
        }
        foreach (long id in ids)
        {
            if (_specialById.TryGetValue((int)id, out string? token))
            {
                Flush();
                if (!skipSpecialTokens || _plainAddedIds.Contains((int)id))
                    text.Append(token);
            }
            else
            {
                run.Add((int)id);
            }
        }
        Flush();
        return text.ToString();
    }
}
