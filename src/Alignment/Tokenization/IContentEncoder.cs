namespace Alignment.Tokenization;

/// <summary>The model-specific half of a <see cref="ModelTokenizer"/>: text to ids and back, without special tokens.</summary>
internal interface IContentEncoder
{
    /// <summary>Ids of <paramref name="text"/>; special-token strings inside it are plain text.</summary>
    /// <param name="text">A non-empty run of text.</param>
    /// <param name="atStart">Whether the run opens the sequence (no special token before it): SentencePiece-style
    /// tokenizers whose dummy prefix goes only before the first run read it.</param>
    IReadOnlyList<int> Encode(string text, bool atStart);

    /// <summary>The text of a run of ids that holds no special token.</summary>
    string Decode(IReadOnlyList<int> ids);
}
