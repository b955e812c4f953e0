using System.Text;

namespace Alignment.Tokenization;

/// <summary>
/// BPE over pieces with byte fallback, as SentencePiece runs it on a <c>tokenizer.model</c> and Hugging Face's tokenizers
/// on a <c>tokenizer.json</c> BPE with <c>byte_fallback</c> (Llama 2, Mistral, Gemma): the normalised text (spaces as
/// <c>▁</c>) is split into characters — user-defined pieces whole — and the adjacent pair with the best priority is merged
/// until no pair is left: the highest-scoring piece first for SentencePiece, the lowest merge rank first for Hugging Face,
/// the leftmost pair on a tie. A final piece outside the vocabulary becomes its UTF-8 bytes (<c>&lt;0xXX&gt;</c>) when the
/// model has byte pieces, else the unknown id (consecutive unknowns fused).
/// </summary>
internal sealed class PieceBpe : IContentEncoder
{
    const char Space = '▁';

    /// <summary>How a normalised run is cut into words before merging (merges never cross a word).</summary>
    internal enum Split { None, BeforeSpace }

    readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _vocabularyBySpan;
    readonly string[] _pieces;
    readonly Dictionary<string, (float Score, int Id)>.AlternateLookup<ReadOnlySpan<char>>? _scores;
    readonly Dictionary<(int Left, int Right), (int Rank, int Id)>? _ranks;
    readonly int[]? _byteIds;
    readonly Dictionary<int, byte> _bytesById = [];
    readonly int _unknownId;
    readonly bool _fuseUnknown;
    readonly bool _fallBackBeforeMerging;
    readonly HashSet<int> _unused;
    readonly string[] _wholePieces;
    readonly Func<string, bool, string> _normalize;
    readonly Split _split;
    readonly bool _stripDecodedSpace;

    PieceBpe(Dictionary<string, int> vocabulary, string[] pieces, Dictionary<string, (float, int)>? scores, Dictionary<(int, int), (int, int)>? ranks,
        bool byteFallback, int unknownId, bool fuseUnknown, IEnumerable<int> unused, IEnumerable<string> wholePieces, Func<string, bool, string> normalize, Split split, bool stripDecodedSpace)
    {
        _vocabularyBySpan = vocabulary.GetAlternateLookup<ReadOnlySpan<char>>();
        _pieces = pieces;
        _scores = scores?.GetAlternateLookup<ReadOnlySpan<char>>();
        _ranks = ranks;
        for (int id = 0; id < pieces.Length; id++)
            if (pieces[id] is { Length: 6 } p && p.StartsWith("<0x", StringComparison.Ordinal) && p[5] == '>' && byte.TryParse(p.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out byte b))
                _bytesById[id] = b;
        if (byteFallback)
        {
            _byteIds = new int[256];
            Array.Fill(_byteIds, -1);
            foreach (var (id, b) in _bytesById)
                _byteIds[b] = id;
            if (_byteIds.Contains(-1))
                _byteIds = null;
        }
        _unknownId = unknownId;
        _fuseUnknown = fuseUnknown;
        _fallBackBeforeMerging = ranks is not null;
        _unused = [.. unused];
        _wholePieces = [.. wholePieces.OrderByDescending(p => p.Length)];
        _normalize = normalize;
        _split = split;
        _stripDecodedSpace = stripDecodedSpace;
    }

    /// <summary>SentencePiece: <paramref name="scores"/> holds every piece a merge may form (normal, user-defined, unused), with its score and id.</summary>
    public static PieceBpe BySentencePieceScore(Dictionary<string, int> vocabulary, string[] pieces, Dictionary<string, (float, int)> scores, bool byteFallback,
        int unknownId, IEnumerable<int> unused, IEnumerable<string> userDefined, Func<string, bool, string> normalize, bool stripDecodedSpace) =>
        new(vocabulary, pieces, scores, null, byteFallback, unknownId, fuseUnknown: true, unused, userDefined, normalize, Split.None, stripDecodedSpace);

    /// <summary>Hugging Face's BPE: <paramref name="ranks"/> maps a pair of ids to its merge rank and the merged id.</summary>
    public static PieceBpe ByMergeRank(Dictionary<string, int> vocabulary, string[] pieces, Dictionary<(int, int), (int, int)> ranks, bool byteFallback,
        int unknownId, bool fuseUnknown, Func<string, bool, string> normalize, Split split, bool stripDecodedSpace) =>
        new(vocabulary, pieces, null, ranks, byteFallback, unknownId, fuseUnknown, [], [], normalize, split, stripDecodedSpace);

    public IReadOnlyList<int> Encode(string text, bool atStart)
    {
        string normalized = _normalize(text, atStart);
        var ids = new List<int>();
        if (_split == Split.None)
        {
            EncodeWord(normalized, ids);
            return ids;
        }
        int start = 0;
        for (int i = 1; i <= normalized.Length; i++)
            if (i == normalized.Length || normalized[i] == Space)
            {
                EncodeWord(normalized[start..i], ids);
                start = i;
            }
        return ids;
    }

    struct Symbol
    {
        public int Start, Length, Prev, Next, Id;
        public bool Dead;
    }

    readonly record struct Candidate(int Left, int Right, int LeftId, int RightId, int Length, int Id);

    void EncodeWord(string word, List<int> ids)
    {
        if (word.Length == 0)
            return;
        var symbols = new Symbol[word.Length * (_fallBackBeforeMerging ? 4 : 1)];
        int count = 0;
        for (int i = 0; i < word.Length;)
        {
            int length = WholePieceAt(word, i);
            if (length == 0)
                length = char.IsSurrogatePair(word, i) ? 2 : 1;
            ReadOnlySpan<char> piece = word.AsSpan(i, length);
            int id = _vocabularyBySpan.TryGetValue(piece, out int known) ? known : -1;
            if (id < 0 && _fallBackBeforeMerging)
            {
                foreach (int fallback in Fallback(piece))
                    if (!(_fuseUnknown && fallback == _unknownId && count > 0 && symbols[count - 1].Id == _unknownId))
                        symbols[count++] = new Symbol { Start = i, Length = 0, Id = fallback };
                symbols[count - 1].Length = i + length - symbols[count - 1].Start;
            }
            else
            {
                symbols[count++] = new Symbol { Start = i, Length = length, Id = id };
            }
            i += length;
        }
        for (int i = 0; i < count; i++)
        {
            symbols[i].Prev = i - 1;
            symbols[i].Next = i + 1 < count ? i + 1 : -1;
        }

        var queue = new PriorityQueue<Candidate, ulong>(count);
        Dictionary<int, (int Left, int Right)>? merged = _unused.Count > 0 ? [] : null;
        void Consider(int left, int right)
        {
            if (left < 0 || right < 0)
                return;
            ref Symbol l = ref symbols[left];
            ref Symbol r = ref symbols[right];
            if (TryMerge(word, l, r, out float priority, out int id))
                queue.Enqueue(new Candidate(left, right, l.Id, r.Id, l.Length + r.Length, id), Order(priority, left));
        }
        for (int i = 0; i + 1 < count; i++)
            Consider(i, i + 1);
        while (queue.TryDequeue(out Candidate c, out _))
        {
            ref Symbol l = ref symbols[c.Left];
            ref Symbol r = ref symbols[c.Right];
            if (l.Dead || r.Dead || l.Next != c.Right || l.Id != c.LeftId || r.Id != c.RightId || l.Length + r.Length != c.Length)
                continue;
            if (merged is not null && _unused.Contains(c.Id))
                merged[c.Id] = (l.Id, r.Id);
            l.Length = c.Length;
            l.Id = c.Id;
            l.Next = r.Next;
            r.Dead = true;
            if (r.Next >= 0)
                symbols[r.Next].Prev = c.Left;
            Consider(l.Prev, c.Left);
            Consider(c.Left, l.Next);
        }
        for (int i = 0; i >= 0; i = symbols[i].Next)
        {
            Symbol s = symbols[i];
            if (s.Id >= 0)
                Emit(s.Id, merged, ids);
            else
                foreach (int fallback in Fallback(word.AsSpan(s.Start, s.Length)))
                    if (!(_fuseUnknown && fallback == _unknownId && ids.Count > 0 && ids[^1] == _unknownId))
                        ids.Add(fallback);
        }
    }

    /// <summary>The queue's order: the best priority first, then the leftmost pair (a float's bits made to sort as unsigned).</summary>
    static ulong Order(float priority, int left)
    {
        int bits = BitConverter.SingleToInt32Bits(-priority);
        uint sortable = bits >= 0 ? (uint)bits ^ 0x8000_0000u : ~(uint)bits;
        return ((ulong)sortable << 32) | (uint)left;
    }

    bool TryMerge(string word, in Symbol left, in Symbol right, out float priority, out int id)
    {
        if (_ranks is not null)
        {
            bool found = _ranks.TryGetValue((left.Id, right.Id), out var merge);
            (priority, id) = (-merge.Rank, merge.Id);
            return found;
        }
        bool known = _scores!.Value.TryGetValue(word.AsSpan(left.Start, left.Length + right.Length), out var piece);
        (priority, id) = (piece.Score, piece.Id);
        return known;
    }

    /// <summary>A merged unused piece (SentencePiece's UNUSED type) is re-split into the pieces it was merged from.</summary>
    void Emit(int id, Dictionary<int, (int Left, int Right)>? merged, List<int> ids)
    {
        if (merged is not null && _unused.Contains(id) && merged.TryGetValue(id, out var parts))
        {
            Emit(parts.Left, merged, ids);
            Emit(parts.Right, merged, ids);
        }
        else
        {
            ids.Add(id);
        }
    }

    int WholePieceAt(string word, int index)
    {
        foreach (string piece in _wholePieces)
            if (string.CompareOrdinal(word, index, piece, 0, piece.Length) == 0)
                return piece.Length;
        return 0;
    }

    IEnumerable<int> Fallback(ReadOnlySpan<char> piece)
    {
        if (_byteIds is null)
            return [_unknownId];
        byte[] bytes = Encoding.UTF8.GetBytes(piece.ToArray());
        return bytes.Select(b => _byteIds[b]);
    }

    public string Decode(IReadOnlyList<int> ids)
    {
        var text = new StringBuilder();
        var bytes = new List<byte>();
        void FlushBytes()
        {
            text.Append(Encoding.UTF8.GetString(bytes.ToArray()));
            bytes.Clear();
        }
        foreach (int id in ids)
        {
            if (_bytesById.TryGetValue(id, out byte b))
            {
                bytes.Add(b);
                continue;
            }
            FlushBytes();
            if (id >= 0 && id < _pieces.Length)
                text.Append(_pieces[id]);
        }
        FlushBytes();
        text.Replace(Space, ' ');
        if (_stripDecodedSpace && text.Length > 0 && text[0] == ' ')
            text.Remove(0, 1);
        return text.ToString();
    }
}
