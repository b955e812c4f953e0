using Alignment.Data;

namespace Alignment.Training;

/// <summary>
/// Checks, before training starts, that every token id of the data lies in the model's vocabulary: an id past it would
/// abort the process inside the embedding lookup. The error names the example's file and line.
/// </summary>
internal static class TokenRange
{
    public static void Check(IEnumerable<TokenizedPair> pairs, long vocabSize)
    {
        foreach (TokenizedPair pair in pairs)
            Check([pair.Prompt, pair.Chosen, pair.Rejected], pair.Source, vocabSize);
    }

    public static void Check(IEnumerable<TokenizedCompletion> examples, long vocabSize)
    {
        foreach (TokenizedCompletion example in examples)
            Check([example.Prompt, example.Completion], example.Source, vocabSize);
    }

    static void Check(int[][] parts, SourceLocation source, long vocabSize)
    {
        foreach (int[] ids in parts)
            foreach (int id in ids)
                if (id < 0 || id >= vocabSize)
                    throw new InvalidDataException($"{source}: token id {id} lies outside the model's vocabulary [0, {vocabSize}): " +
                        "the data was tokenized for another model, or the tokenizer does not belong to this one.");
    }
}
