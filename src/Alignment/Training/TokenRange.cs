using Alignment.Data;
using Alignment.Models;

namespace Alignment.Training;

/// <summary>
/// Checks, before training starts, that the data fits the model: every token id lies in its vocabulary (an id past it
/// would abort the process inside the embedding lookup) and every sequence within its positions. The error names the
/// example's file and line.
/// </summary>
internal static class TokenRange
{
    public static void Check(IEnumerable<TokenizedPair> pairs, DecoderConfig model)
    {
        foreach (TokenizedPair pair in pairs)
            Check(pair.Prompt, [pair.Chosen, pair.Rejected], pair.Source, model);
    }

    public static void Check(IEnumerable<TokenizedCompletion> examples, DecoderConfig model)
    {
        foreach (TokenizedCompletion example in examples)
            Check(example.Prompt, [example.Completion], example.Source, model);
    }

    static void Check(int[] prompt, int[][] completions, SourceLocation source, DecoderConfig model)
    {
        foreach (int[] ids in completions.Prepend(prompt))
            foreach (int id in ids)
                if (id < 0 || id >= model.VocabSize)
                    throw new InvalidDataException($"{source}: token id {id} lies outside the model's vocabulary [0, {model.VocabSize}): " +
                        "the data was tokenized for another model, or the tokenizer does not belong to this one.");
        int longest = prompt.Length + completions.Max(c => c.Length);
        if (longest > model.MaxPositionEmbeddings)
            throw new InvalidDataException($"{source}: {longest} tokens exceed the model's max_position_embeddings ({model.MaxPositionEmbeddings}); " +
                "set max_length (and max_prompt_length) at most that.");
    }
}
