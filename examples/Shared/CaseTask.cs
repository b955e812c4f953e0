// The toy task the QuickStart and RlhfPipeline examples share: short questions that ask for the answer in capital or
// small letters, a rule anyone can check, and a tiny Llama-style model with a byte-level tokenizer built from scratch.
using System.Text.Json.Nodes;
using Alignment.Models;
using Alignment.Tokenization;

internal static class CaseTask
{
    public static readonly (string Question, string Answer)[] Facts =
    [
        ("What colour is the sky?", "blue"), ("What is two plus two?", "four"), ("What is the capital of France?", "paris"),
        ("What animal says meow?", "cat"), ("What do bees make?", "honey"), ("What is frozen water?", "ice"),
        ("What colour is grass?", "green"), ("How many legs has a spider?", "eight"), ("What is the opposite of hot?", "cold"),
        ("What star lights the day?", "sun"), ("What falls from clouds?", "rain"), ("What do cows drink?", "water"),
        ("What is the opposite of up?", "down"), ("What colour is snow?", "white"), ("What fruit is yellow and long?", "banana"),
        ("What do we breathe?", "air"), ("What animal barks?", "dog"), ("What is the first month?", "january"),
        ("What is three times three?", "nine"), ("What shines at night?", "moon"), ("What colour is coal?", "black"),
        ("What do fish swim in?", "sea"), ("What is the opposite of day?", "night"), ("What bird hoots at night?", "owl"),
    ];

    public static readonly string[] UpperAsks = ["Answer in capital letters.", "Reply in uppercase."];
    public static readonly string[] LowerAsks = ["Answer in lowercase.", "Reply in small letters."];

    /// <summary>Whether the answer has letters and uses the case the prompt asks for.</summary>
    public static bool Complies(string prompt, string answer) =>
        answer.Any(char.IsLetter) && (prompt.Contains("capital") || prompt.Contains("uppercase")
            ? answer == answer.ToUpperInvariant() : answer == answer.ToLowerInvariant());

    /// <summary>
    /// Writes a byte-level tokenizer (one token per UTF-8 byte, plus ChatML's markers) and a freshly initialised 3-layer
    /// Llama-style model into <paramref name="folder"/>; returns the tokenizer and its chat template (ChatML).
    /// </summary>
    public static (ModelTokenizer Tokenizer, IChatTemplate Chat) CreateBaseModel(string folder)
    {
        ByteLevelTokenizer.WriteFolder(folder);
        var tokenizer = ModelTokenizer.FromFolder(folder);
        IChatTemplate chat = ChatTemplates.For(tokenizer);             // ChatML, recognised from the folder
        var config = DecoderConfig.FromJson(new JsonObject
        {
            ["model_type"] = "llama", ["vocab_size"] = 259, ["hidden_size"] = 96, ["intermediate_size"] = 256, ["num_hidden_layers"] = 3,
            ["num_attention_heads"] = 4, ["num_key_value_heads"] = 2, ["max_position_embeddings"] = 256, ["tie_word_embeddings"] = true,
            ["eos_token_id"] = tokenizer.EosTokenIds[0], ["pad_token_id"] = tokenizer.PadTokenId,
        });
        using var fresh = new LlamaForCausalLM(config);
        fresh.InitializeWeights(std: 0.02, seed: 0);                   // as transformers initialises a model trained from scratch
        fresh.SavePretrained(folder);
        return (tokenizer, chat);
    }

    /// <summary>The model's greedy answer to each prompt (a user turn through the chat template).</summary>
    public static List<string> GreedyAnswers(ICausalLM model, ModelTokenizer tokenizer, IChatTemplate chat, IEnumerable<string> prompts, int maxNewTokens) =>
        prompts.Select(prompt =>
        {
            long[] ids = tokenizer.Encode(chat.Render([new("user", prompt)], addGenerationPrompt: true)).Select(i => (long)i).ToArray();
            Completion reply = TextGenerator.Generate(model, [ids], new GenerationOptions
            {
                MaxNewTokens = maxNewTokens, Temperature = 0, EosTokenIds = tokenizer.EosTokenIds.Select(i => (long)i).ToArray(),
            })[0];
            return tokenizer.Decode(reply.Tokens, skipSpecialTokens: true).Trim();
        }).ToList();
}
