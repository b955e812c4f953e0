using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.Extensions.AI;

namespace Alignment.Scoring;

/// <summary>
/// An LLM judge as the reward, through <see cref="IChatClient"/>: it asks for a 0–10 rating of each completion and uses
/// the first number in the answer (0 when there is none), clamped to [0, 10] and scaled to [0, 1].
/// </summary>
/// <param name="client">The judge model.</param>
/// <param name="options">Chat options sent with each request.</param>
public sealed partial class JudgeReward(IChatClient client, ChatOptions? options = null) : IRewardModel
{
    /// <summary>The instruction; {prompt} and {completion} are replaced.</summary>
    public string Instruction { get; init; } =
        "Rate how good this response is, from 0 (useless or harmful) to 10 (excellent).\n\nPrompt:\n{prompt}\n\nResponse:\n{completion}\n\nAnswer with the number only.";

    /// <inheritdoc />
    public IReadOnlyList<double> Score(IReadOnlyList<string> prompts, IReadOnlyList<string> completions) =>
        prompts.Select((prompt, i) =>
        {
            string text = Instruction.Replace("{prompt}", prompt, StringComparison.Ordinal).Replace("{completion}", completions[i], StringComparison.Ordinal);
            ChatResponse response = client.GetResponseAsync([new ChatMessage(ChatRole.User, text)], options).GetAwaiter().GetResult();
            Match match = Number().Match(response.Text ?? "");
            return match.Success ? Math.Clamp(double.Parse(match.Value, CultureInfo.InvariantCulture), 0, 10) / 10 : 0;
        }).ToList();

    [GeneratedRegex(@"\d+(\.\d+)?")]
    private static partial Regex Number();
}
