using Alignment.Tokenization;
using BenchmarkDotNet.Attributes;

namespace Alignment.Benchmarks.Tokenization;

/// <summary>
/// Encoding throughput on the real tokenizer files of the test fixtures (tests/Alignment.Tests/Tokenization/Fixtures):
/// corpus.txt beside this file (the Apache License 2.0 and a snapshot of this repository's README: 57 KB of English,
/// code, tables and Unicode, fixed so that runs of different versions encode the same text) encoded line by line as
/// content, 100 times per invocation, by a SentencePiece BPE model (tokenizer.model), Mistral's byte-fallback BPE
/// (tokenizer.json) and GPT-2's byte-level BPE (tokenizer.json). Characters per second = 100 × the corpus's length / the
/// mean time.
/// </summary>
public class TokenizerBenchmarks
{
    string[] _lines = null!;
    ModelTokenizer _tokenizer = null!;

    [Params("sentencepiece-bpe", "mistral-7b", "gpt2")]
    public string Fixture { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        string root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "Alignment.sln")))
            root = Path.GetDirectoryName(root) ?? throw new DirectoryNotFoundException("Run the benchmarks from inside the repository.");
        _lines = File.ReadAllLines(Path.Combine(root, "benchmarks", "Alignment.Benchmarks", "Tokenization", "corpus.txt")).Where(line => line.Length > 0).ToArray();
        _tokenizer = ModelTokenizer.FromFolder(Path.Combine(root, "tests", "Alignment.Tests", "Tokenization", "Fixtures", Fixture));
    }

    [Benchmark]
    public int EncodeCorpus()
    {
        int count = 0;
        for (int repeat = 0; repeat < 100; repeat++)
            foreach (string line in _lines)
                count += _tokenizer.EncodeContent(line).Count;
        return count;
    }
}
