using Alignment.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Tests.Models;

public sealed class TextGeneratorTests
{
    /// <summary>Argmax decoding that re-runs the whole sequence every step, with no cache.</summary>
    static long[] NaiveGreedy(LlamaForCausalLM model, long[] prompt, int steps)
    {
        var sequence = prompt.ToList();
        for (int i = 0; i < steps; i++)
        {
            using var scope = NewDisposeScope();
            Tensor hidden = model.Forward(tensor(sequence.ToArray()).unsqueeze(0));
            sequence.Add(model.Logits(hidden[0, -1]).argmax().item<long>());
        }
        return sequence.Skip(prompt.Length).ToArray();
    }

    static GenerationOptions Greedy(int steps) => new() { MaxNewTokens = steps, Temperature = 0, EosTokenIds = [] };

    [Fact]
    public void Greedy_generation_with_the_cache_equals_argmax_decoding_without_it()
    {
        using LlamaForCausalLM model = TinyModels.Random(TinyModels.ConfigJson());
        long[] prompt = [1, 5, 9, 13];
        Completion result = TextGenerator.Generate(model, [prompt], Greedy(12))[0];
        Assert.Equal(NaiveGreedy(model, prompt, 12), result.Tokens);
        Assert.Equal(FinishReason.Length, result.Reason);
    }

    [Fact]
    public void Left_padded_batches_generate_what_each_prompt_generates_alone()
    {
        using LlamaForCausalLM model = TinyModels.Random(TinyModels.ConfigJson());
        long[][] prompts = [[1, 5, 9, 13, 22, 40], [1, 7], [3, 3, 3]];
        var batched = TextGenerator.Generate(model, prompts, Greedy(8));
        for (int i = 0; i < prompts.Length; i++)
            Assert.Equal(NaiveGreedy(model, prompts[i], 8), batched[i].Tokens);
    }

    [Fact]
    public void A_sequence_stops_at_its_end_token_and_the_others_go_on()
    {
        using LlamaForCausalLM model = TinyModels.Random(TinyModels.ConfigJson());
        long[] first = NaiveGreedy(model, [1, 5, 9], 6), second = NaiveGreedy(model, [2, 8], 6);
        long eos = first[2];
        int expectedStop = Array.IndexOf(first, eos) + 1;

        var results = TextGenerator.Generate(model, [[1, 5, 9], [2, 8]], Greedy(6) with { EosTokenIds = [eos] });

        Assert.Equal(first.Take(expectedStop), results[0].Tokens);
        Assert.Equal(FinishReason.EndOfSequence, results[0].Reason);
        int secondStop = Array.IndexOf(second, eos);
        Assert.Equal(secondStop < 0 ? second : second.Take(secondStop + 1).ToArray(), results[1].Tokens);
    }

    [Fact]
    public void Stop_strings_end_a_sequence_once_its_text_contains_them()
    {
        using LlamaForCausalLM model = TinyModels.Random(TinyModels.ConfigJson());
        long[] greedy = NaiveGreedy(model, [1, 5], 10);
        string Decode(IReadOnlyList<long> tokens) => string.Join(" ", tokens);
        string stop = $" {greedy[3]}";

        Completion result = TextGenerator.Generate(model, [[1, 5]], Greedy(10) with { StopStrings = [stop] }, Decode)[0];

        Assert.Equal(FinishReason.StopString, result.Reason);
        Assert.Contains(stop, Decode(result.Tokens));
        Assert.DoesNotContain(stop, Decode(result.Tokens[..^1]));
    }

    [Fact]
    public void With_row_seeds_each_row_samples_what_it_samples_alone()
    {
        using LlamaForCausalLM model = TinyModels.Random(TinyModels.ConfigJson());
        var sampling = new GenerationOptions { MaxNewTokens = 8, Temperature = 1.5, EosTokenIds = [] };
        long[][] prompts = [[1, 5], [7, 3, 9, 2], [4]];
        long[] seeds = [11, 12, 13];
        IReadOnlyList<Completion> together = TextGenerator.Generate(model, prompts, sampling with { RowSeeds = seeds });
        for (int i = 0; i < prompts.Length; i++)
            Assert.Equal(TextGenerator.Generate(model, [prompts[i]], sampling with { RowSeeds = [seeds[i]] })[0].Tokens, together[i].Tokens);
        Assert.Throws<ArgumentException>(() => TextGenerator.Generate(model, prompts, sampling with { RowSeeds = [1] }));
    }

    [Fact]
    public void Seeded_sampling_is_reproducible_and_top_k_of_one_is_greedy()
    {
        using LlamaForCausalLM model = TinyModels.Random(TinyModels.ConfigJson());
        var sampling = new GenerationOptions { MaxNewTokens = 10, Temperature = 1.3, TopP = 0.9, Seed = 42, EosTokenIds = [] };
        Assert.Equal(TextGenerator.Generate(model, [[1, 5]], sampling)[0].Tokens, TextGenerator.Generate(model, [[1, 5]], sampling)[0].Tokens);
        Assert.Equal(NaiveGreedy(model, [1, 5], 10), TextGenerator.Generate(model, [[1, 5]], sampling with { TopK = 1 })[0].Tokens);
    }

    [Fact]
    public void Top_p_keeps_the_smallest_set_of_tokens_reaching_p()
    {
        using var scope = NewDisposeScope();
        // Probabilities 0.5, 0.3, 0.15, 0.05: with p = 0.7 only tokens 0 and 1 remain.
        Tensor logits = tensor(new[] { 0.5f, 0.3f, 0.15f, 0.05f }).log().unsqueeze(0).expand(2000, 4).contiguous();
        var generator = new Generator(9);
        long[] picks = TextGenerator.Pick(logits, new GenerationOptions { TopP = 0.7 }, [generator]).data<long>().ToArray();
        Assert.All(picks, p => Assert.True(p is 0 or 1));
        double share = picks.Count(p => p == 0) / (double)picks.Length;
        Assert.InRange(share, 0.5 / 0.8 - 0.05, 0.5 / 0.8 + 0.05);
    }

    [Fact]
    public void Bad_options_are_named()
    {
        Assert.Contains("top_p", Assert.Throws<ArgumentException>(() => new GenerationOptions { TopP = 0 }.Validate()).Message);
        Assert.Contains("temperature", Assert.Throws<ArgumentException>(() => new GenerationOptions { Temperature = -1 }.Validate()).Message);
    }
}
