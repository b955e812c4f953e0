using System.Text;

namespace Alignment.Tokenization;

/// <summary>
/// Reads SentencePiece's <c>tokenizer.model</c> (the <c>ModelProto</c> protobuf of sentencepiece_model.proto): its
/// pieces with scores and types, the trainer's model type, byte fallback and special ids, and the normaliser's
/// whitespace handling.
/// </summary>
internal sealed class SentencePieceFile
{
    // SentencePiece.Type
    const int Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5;

    public required List<(string Piece, float Score, int Type)> Pieces { get; init; }
    public int ModelType { get; private set; } = 1;
    public bool ByteFallback { get; private set; }
    public int UnknownId { get; private set; }
    public int BosId { get; private set; } = 1;
    public int EosId { get; private set; } = 2;
    public int PadId { get; private set; } = -1;
    public string NormalizerName { get; private set; } = "";
    public bool HasCharsMap { get; private set; }
    public bool AddDummyPrefix { get; private set; } = true;
    public bool RemoveExtraWhitespaces { get; private set; } = true;
    public bool EscapeWhitespaces { get; private set; } = true;

    /// <summary>Parses the file.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a SentencePiece model; the message names the file.</exception>
    public static SentencePieceFile Read(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        var file = new SentencePieceFile { Pieces = [] };
        try
        {
            foreach (var (field, value) in Fields(bytes))
            {
                switch (field)
                {
                    case 1:
                        file.Pieces.Add(ReadPiece(value));
                        break;
                    case 2:
                        file.ReadTrainer(value);
                        break;
                    case 3:
                        file.ReadNormalizer(value);
                        break;
                }
            }
        }
        catch (Exception e) when (e is IndexOutOfRangeException or ArgumentOutOfRangeException or ArgumentException or DecoderFallbackException)
        {
            throw new InvalidDataException($"'{path}' is not a SentencePiece model (tokenizer.model): {e.Message}", e);
        }
        if (file.Pieces.Count == 0)
            throw new InvalidDataException($"'{path}' is not a SentencePiece model (tokenizer.model): it has no pieces.");
        return file;
    }

    /// <summary>The unknown, BOS, EOS and pad pieces and every control piece, with their ids.</summary>
    public IEnumerable<(string Piece, int Id)> SpecialPieces() =>
        Enumerable.Range(0, Pieces.Count)
            .Where(id => id == UnknownId || id == BosId || id == EosId || id == PadId || Pieces[id].Type == Control)
            .Select(id => (Pieces[id].Piece, id));

    /// <summary>The BPE encoder of this model.</summary>
    /// <exception cref="InvalidDataException">A unigram model, or a normaliser other than the identity one; the message names the file.</exception>
    public PieceBpe CreateEncoder(string path, IReadOnlySet<string> specialTokens)
    {
        if (ModelType != 2)
            throw new InvalidDataException($"'{path}': SentencePiece model type {ModelType} ({(ModelType == 1 ? "unigram" : "not BPE")}) is not supported; BPE (Llama 2, Mistral, Gemma) is.");
        if (HasCharsMap && NormalizerName != "identity")
            throw new InvalidDataException($"'{path}': the SentencePiece normalizer '{NormalizerName}' is not supported; the identity normalizer (Llama 2, Mistral, Gemma) is.");
        var vocabulary = new Dictionary<string, int>(PieceComparer.Instance);
        var scores = new Dictionary<string, (float, int)>(PieceComparer.Instance);
        for (int id = 0; id < Pieces.Count; id++)
        {
            var (piece, score, type) = Pieces[id];
            if (type is Normal or UserDefined or Unused && vocabulary.TryAdd(piece, id))
                scores[piece] = (score, id);
        }
        var unused = Enumerable.Range(0, Pieces.Count).Where(id => Pieces[id].Type == Unused);
        var userDefined = Pieces.Where(p => p.Type == UserDefined && !specialTokens.Contains(p.Piece)).Select(p => p.Piece);
        return PieceBpe.BySentencePieceScore(vocabulary, [.. Pieces.Select(p => p.Type is Control or Unknown ? "" : p.Piece)], scores, ByteFallback,
            UnknownId, unused, userDefined, Normalize, stripDecodedSpace: AddDummyPrefix);
    }

    /// <summary>The identity normaliser: extra spaces removed if asked, the dummy prefix added, spaces escaped as ▁.</summary>
    string Normalize(string text, bool atStart)
    {
        if (RemoveExtraWhitespaces)
            text = string.Join(' ', text.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        if (text.Length > 0 && AddDummyPrefix)
            text = " " + text;
        return EscapeWhitespaces ? text.Replace(' ', '▁') : text;
    }

    static (string, float, int) ReadPiece(ReadOnlyMemory<byte> message)
    {
        string piece = "";
        float score = 0;
        int type = Normal;
        foreach (var (field, value) in Fields(message))
        {
            switch (field)
            {
                case 1: piece = Encoding.UTF8.GetString(value.Span); break;
                case 2: score = BitConverter.ToSingle(value.Span); break;
                case 3: type = (int)Varint(value.Span); break;
            }
        }
        return (piece, score, type);
    }

    void ReadTrainer(ReadOnlyMemory<byte> message)
    {
        foreach (var (field, value) in Fields(message))
        {
            switch (field)
            {
                case 3: ModelType = (int)Varint(value.Span); break;
                case 35: ByteFallback = Varint(value.Span) != 0; break;
                case 40: UnknownId = (int)Varint(value.Span); break;
                case 41: BosId = (int)Varint(value.Span); break;
                case 42: EosId = (int)Varint(value.Span); break;
                case 43: PadId = (int)Varint(value.Span); break;
            }
        }
    }

    void ReadNormalizer(ReadOnlyMemory<byte> message)
    {
        foreach (var (field, value) in Fields(message))
        {
            switch (field)
            {
                case 1: NormalizerName = Encoding.UTF8.GetString(value.Span); break;
                case 2: HasCharsMap = value.Length > 0; break;
                case 3: AddDummyPrefix = Varint(value.Span) != 0; break;
                case 4: RemoveExtraWhitespaces = Varint(value.Span) != 0; break;
                case 5: EscapeWhitespaces = Varint(value.Span) != 0; break;
            }
        }
    }

    /// <summary>A message's fields: varints as their encoded bytes, fixed32/64 and length-delimited values as their bytes.</summary>
    static IEnumerable<(int Field, ReadOnlyMemory<byte> Value)> Fields(ReadOnlyMemory<byte> message)
    {
        int position = 0;
        while (position < message.Length)
        {
            ulong key = ReadVarint(message.Span, ref position);
            int field = (int)(key >> 3), start = position;
            switch ((int)(key & 7))
            {
                case 0:
                    ReadVarint(message.Span, ref position);
                    yield return (field, message[start..position]);
                    break;
                case 1:
                    position += 8;
                    yield return (field, message[start..position]);
                    break;
                case 2:
                    int length = checked((int)ReadVarint(message.Span, ref position));
                    yield return (field, message.Slice(position, length));
                    position += length;
                    break;
                case 5:
                    position += 4;
                    yield return (field, message[start..position]);
                    break;
                default:
                    throw new ArgumentException($"unknown protobuf wire type {key & 7} at byte {start}");
            }
        }
    }

    static long Varint(ReadOnlySpan<byte> bytes)
    {
        int position = 0;
        return (long)ReadVarint(bytes, ref position);
    }

    static ulong ReadVarint(ReadOnlySpan<byte> bytes, ref int position)
    {
        ulong value = 0;
        for (int shift = 0; ; shift += 7)
        {
            byte b = bytes[position++];
            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
                return value;
            if (shift > 63)
                throw new ArgumentException($"malformed varint at byte {position}");
        }
    }
}
