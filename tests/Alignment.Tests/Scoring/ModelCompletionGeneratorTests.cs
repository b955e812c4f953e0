using Alignment.Models;
using Alignment.Scoring;
using Alignment.Tests.Models;
using Alignment.Tests.Tokenization;
using Alignment.Tokenization;

namespace Alignment.Tests.Scoring;

public sealed class ModelCompletionGeneratorTests : IDisposable
{
    readonly TinyTokenizers _tokenizers = new();

    public void Dispose() => _tokenizers.Dispose();

    static readonly string[] Prompts = ["hello", "the world and more words here", "say", "a much longer prompt than the others, with many more tokens in it"];

    [Fact]
    public async Task Batched_generation_equals_one_prompt_at_a_time()
    {
        var json = TinyModels.ConfigJson();
        (json["vocab_size"], json["max_position_embeddings"]) = (300, 256);
        using var model = TinyModels.Random(json);
        var tokenizer = ModelTokenizer.FromFolder(_tokenizers.Folder("tok", chatTemplate: TinyTokenizers.ChatMlTemplate));
        var template = ChatTemplates.For(tokenizer);
        var greedy = new GenerationOptions { MaxNewTokens = 6, Temperature = 0, EosTokenIds = [] };

        ICompletionGenerator batched = new ModelCompletionGenerator("m", model, tokenizer, template, greedy) { BatchSize = 3 };
        var oneByOne = new List<string>();
        foreach (string prompt in Prompts) // the prompts' lengths differ: the batch is left-padded
            oneByOne.Add((await batched.GenerateAsync(prompt, 1))[0]);
        Assert.Equal(oneByOne, await batched.GenerateEachAsync(Prompts));

        var sampled = greedy with { Temperature = 1.0, Seed = 5 };
        var inTwos = new ModelCompletionGenerator("m", model, tokenizer, template, sampled) { BatchSize = 2 };
        var all = new ModelCompletionGenerator("m", model, tokenizer, template, sampled) { BatchSize = 8 };
        Assert.Equal(await all.GenerateEachAsync(Prompts), await inTwos.GenerateEachAsync(Prompts)); // each row its own seeded generator
    }
}
