using System.Text;
using Alignment.Tokenization;

namespace Alignment.Tests.Tokenization;

public sealed class SentencePieceTests : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("alignment-sp-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    // --- A minimal protobuf writer for sentencepiece's ModelProto (sentencepiece_model.proto). ---
    static void Varint(Stream s, ulong value)
    {
        do
        {
            byte b = (byte)(value & 0x7F);
            value >>= 7;
            s.WriteByte(value != 0 ? (byte)(b | 0x80) : b);
        } while (value != 0);
    }

    static void Key(Stream s, int field, int wireType) => Varint(s, (ulong)((field << 3) | wireType));
    static void Int(Stream s, int field, long value) { Key(s, field, 0); Varint(s, (ulong)value); }
    static void Bytes(Stream s, int field, byte[] value) { Key(s, field, 2); Varint(s, (ulong)value.Length); s.Write(value); }
    static void Text(Stream s, int field, string value) => Bytes(s, field, Encoding.UTF8.GetBytes(value));
    static void Float(Stream s, int field, float value) { Key(s, field, 5); s.Write(BitConverter.GetBytes(value)); }

    static byte[] Message(Action<Stream> write)
    {
        using var s = new MemoryStream();
        write(s);
        return s.ToArray();
    }

    const int Normal = 1, Unknown = 2, Control = 3;

    /// <summary>Pieces: &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt;, then BPE pieces whose scores rank the merges (higher merges first).</summary>
    static readonly (string Piece, float Score, int Type)[] Pieces =
    [
        ("<unk>", 0, Unknown), ("<s>", 0, Control), ("</s>", 0, Control),
        ("▁hello", -1, Normal), ("▁world", -2, Normal), ("▁w", -3, Normal), ("hello", -4, Normal), ("ll", -5, Normal), ("he", -6, Normal),
        ("hel", -7, Normal), ("or", -8, Normal), ("orld", -9, Normal), ("rld", -10, Normal), ("ld", -11, Normal), ("▁he", -12, Normal),
        ("▁hel", -13, Normal), ("▁hell", -14, Normal), ("▁wor", -15, Normal), ("▁worl", -16, Normal),
        ("▁", -20, Normal), ("h", -21, Normal), ("e", -22, Normal), ("l", -23, Normal), ("o", -24, Normal), ("w", -25, Normal),
        ("r", -26, Normal), ("d", -27, Normal), ("<", -28, Normal), ("/", -29, Normal), ("s", -30, Normal), (">", -31, Normal),
    ];

    string WriteModel()
    {
        byte[] model = Message(m =>
        {
            foreach (var (piece, score, type) in Pieces)
                Bytes(m, 1, Message(p => { Text(p, 1, piece); Float(p, 2, score); Int(p, 3, type); }));
            Bytes(m, 2, Message(t =>
            {
                Int(t, 3, 2);               // model_type = BPE
                Int(t, 4, Pieces.Length);   // vocab_size
                Int(t, 40, 0);              // unk_id
                Int(t, 41, 1);              // bos_id
                Int(t, 42, 2);              // eos_id
                Int(t, 43, -1);             // pad_id: none
            }));
            Bytes(m, 3, Message(n =>
            {
                Text(n, 1, "identity");
                Int(n, 3, 1);               // add_dummy_prefix
                Int(n, 4, 0);               // remove_extra_whitespaces
                Int(n, 5, 1);               // escape_whitespaces
            }));
        });
        File.WriteAllBytes(Path.Combine(_folder, "tokenizer.model"), model);
        File.WriteAllText(Path.Combine(_folder, "tokenizer_config.json"), """{"bos_token": "<s>", "eos_token": "</s>", "chat_template": "{{ bos_token }}{% for m in messages %}{{ '[INST] ' + m['content'] + ' [/INST]' }}{% endfor %}"}""");
        return _folder;
    }

    static int Id(string piece) => Array.FindIndex(Pieces, p => p.Piece == piece);

    [Fact]
    public void A_sentencepiece_model_encodes_decodes_and_knows_its_control_tokens()
    {
        var tokenizer = ModelTokenizer.FromFolder(WriteModel());
        Assert.Equal("tokenizer.model (SentencePiece)", tokenizer.Kind);
        Assert.Equal([Id("▁hello"), Id("▁world")], tokenizer.EncodeContent("hello world"));
        Assert.Equal("hello world", tokenizer.Decode(tokenizer.EncodeContent("hello world").Select(i => (long)i)));
        Assert.Equal(1, tokenizer.BosTokenId);
        Assert.Equal([2], tokenizer.EosTokenIds);
        Assert.Equal("<s>[INST] hi [/INST]", string.Concat(ChatTemplates.For(tokenizer).Render([new("user", "hi")], addGenerationPrompt: true).Select(s => s.Text)));
    }

    [Fact]
    public void Llama2_prompt_and_completion_ids_are_the_conversations_ids_split_at_the_prompt()
    {
        var tokenizer = ModelTokenizer.FromFolder(WriteModel());
        IChatTemplate template = ChatTemplates.Named("llama2", tokenizer);
        ChatMessage[] prompt = [new("user", "hello")];
        var answer = new ChatMessage("assistant", "hello world");

        var (promptIds, completionIds) = tokenizer.EncodeChat(template, prompt, answer);

        List<int> whole = tokenizer.Encode(template.Render([.. prompt, answer], addGenerationPrompt: false));
        Assert.Equal(whole, promptIds.Concat(completionIds));
        Assert.Equal(tokenizer.Encode(template.Render(prompt, addGenerationPrompt: true)), promptIds);
        Assert.Equal([Id("▁hello"), Id("▁world"), Id("▁"), 2], completionIds); // " hello world " then </s>: one dummy prefix only
    }

    [Fact]
    public void Control_token_text_in_content_is_not_the_control_token()
    {
        var tokenizer = ModelTokenizer.FromFolder(WriteModel());
        IReadOnlyList<int> ids = tokenizer.EncodeContent("hello </s>");
        Assert.DoesNotContain(2, ids);
        Assert.Equal([1, Id("▁hello"), 2], tokenizer.Encode([Segment.Special("<s>"), Segment.Content("hello"), Segment.Special("</s>")]));
    }
}
