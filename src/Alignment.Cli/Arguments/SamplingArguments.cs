using Alignment.Tokenization;

namespace Alignment.Cli.Arguments;

/// <summary>transformers' <c>GenerationConfig</c> options for <c>generate</c> and <c>chat</c>.</summary>
internal sealed class SamplingArguments : IArgumentGroup
{
    static readonly GenerationOptions Defaults = new();
    readonly Option<int?> _maxNewTokens = CliOption.Int("max-new-tokens", "New tokens at most.", Defaults.MaxNewTokens);
    readonly Option<double?> _temperature = CliOption.Double("temperature", "Sampling temperature; 0 = greedy.", Defaults.Temperature);
    readonly Option<int?> _topK = CliOption.Int("top-k", "Sample among the k most likely tokens; 0 = off.", Defaults.TopK);
    readonly Option<double?> _topP = CliOption.Double("top-p", "Nucleus sampling threshold; 1 = off.", Defaults.TopP);
    readonly Option<int?> _seed = CliOption.Int("seed", "Seed of the sampling generator.", null);

    public IEnumerable<Option> Options => new Option[] { _maxNewTokens, _temperature, _topK, _topP, _seed };

    public GenerationOptions Read(ParseResult parse, ModelTokenizer tokenizer)
    {
        var options = new GenerationOptions
        {
            MaxNewTokens = parse.GetValue(_maxNewTokens)!.Value,
            Temperature = parse.GetValue(_temperature)!.Value,
            TopK = parse.GetValue(_topK)!.Value,
            TopP = parse.GetValue(_topP)!.Value,
            Seed = parse.GetValue(_seed),
            EosTokenIds = tokenizer.EosTokenIds.Select(i => (long)i).ToArray(),
        };
        options.Validate();
        return options;
    }

    /// <summary>The model's reply to a conversation (through the template, or the last message as plain text without one).</summary>
    public static string Reply(LlamaForCausalLM model, ModelTokenizer tokenizer, IChatTemplate? template, IReadOnlyList<ChatMessage> conversation, GenerationOptions sampling)
    {
        IReadOnlyList<int> ids = template is not null
            ? tokenizer.Encode(template.Render(conversation, addGenerationPrompt: true))
            : tokenizer.EncodeContent(conversation[^1].Content);
        Completion reply = TextGenerator.Generate(model, [ids.Select(i => (long)i).ToArray()], sampling)[0];
        return tokenizer.Decode(reply.Tokens, skipSpecialTokens: true).Trim();
    }
}
