using System.Globalization;
using System.Reflection;
using Alignment.Scoring;

namespace Alignment.Cli.Arguments;

/// <summary>TRL's <c>reward_funcs</c> and <c>reward_weights</c> for <c>align ppo/grpo/rloo</c>, beside <c>--reward-model</c>.</summary>
internal sealed class RewardArguments : IArgumentGroup
{
    /// <summary>The built-in functions by every name they answer to (TRL's script names first).</summary>
    static readonly Dictionary<string, string> Kinds = new(StringComparer.Ordinal)
    {
        ["accuracy_reward"] = "accuracy", ["accuracy"] = "accuracy",
        ["reasoning_accuracy_reward"] = "reasoning_accuracy", ["reasoning_accuracy"] = "reasoning_accuracy",
        ["think_format_reward"] = "format", ["think_format"] = "format", ["format"] = "format",
        ["get_soft_overlong_punishment"] = "soft_overlong", ["soft_overlong_punishment"] = "soft_overlong", ["soft_overlong"] = "soft_overlong",
    };

    readonly Option<string?> _funcs = CliOption.Text("reward-funcs",
        "Comma-separated reward functions: accuracy_reward (vs the dataset's --solution-column), reasoning_accuracy_reward, think_format_reward, " +
        "soft_overlong_punishment (DAPO; L_max = --response-length), or FILE.dll:Namespace.Type for your own IRewardFunction. Summed after --reward-model's score.");
    readonly Option<string?> _weights = CliOption.Text("reward-weights", "Comma-separated weights, one per reward (--reward-model's first); all 1 when not given.");
    readonly Option<string?> _solutionColumn = CliOption.Text("solution-column", "The dataset column the accuracy rewards compare with.", "solution");
    readonly Option<int?> _softPunishCache = CliOption.Int("soft-punish-cache", "L_cache of soft_overlong_punishment, in tokens (default: a fifth of --response-length).", null);

    public IEnumerable<Option> Options => new Option[] { _funcs, _weights, _solutionColumn, _softPunishCache };

    /// <summary>The reward functions of <c>--reward-funcs</c>, in order; empty when not given.</summary>
    /// <param name="parse">The command line.</param>
    /// <param name="responseLength">L_max of the over-length punishment.</param>
    /// <exception cref="ArgumentException">An unknown name, a bad assembly or type, or a bad cache length.</exception>
    public List<IRewardFunction> Functions(ParseResult parse, int responseLength)
    {
        string column = parse.GetValue(_solutionColumn)!;
        int cache = parse.GetValue(_softPunishCache) ?? responseLength / 5;
        if (cache < 0 || cache > responseLength)
            throw new ArgumentException($"--soft-punish-cache must be in [0, --response-length = {responseLength}], got {cache}.");
        var names = (parse.GetValue(_funcs) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return names.Select(name => BuiltIn(name, column, responseLength, cache) ?? FromAssembly(name)).ToList();
    }

    /// <summary>Every name a built-in reward function answers to.</summary>
    public static IEnumerable<string> BuiltInNames => Kinds.Keys;

    /// <summary>The built-in reward function of that name, or null when there is none.</summary>
    public static IRewardFunction? BuiltIn(string name, string column, int responseLength, int cache) =>
        Kinds.TryGetValue(name, out string? kind)
            ? kind switch
            {
                "accuracy" => RewardFunction.Accuracy(column),
                "reasoning_accuracy" => RewardFunction.ReasoningAccuracy(column),
                "format" => RewardFunction.ThinkFormat(),
                _ => RewardFunction.SoftOverlongPunishment(responseLength, cache),
            }
            : null;

    /// <summary>The weights of <c>--reward-weights</c>, checked against the number of rewards; null when not given.</summary>
    public double[]? Weights(ParseResult parse, IReadOnlyList<string> rewardNames)
    {
        if (parse.GetValue(_weights) is not { } text)
            return null;
        double[] weights = text.Split(',').Select(Weight).ToArray();
        if (weights.Length != rewardNames.Count)
            throw new ArgumentException($"--reward-weights has {weights.Length} values for {rewardNames.Count} rewards ({string.Join(", ", rewardNames)}).");
        return weights;
    }

    /// <summary><c>FILE.dll:Namespace.Type</c>: a public type with a parameterless constructor that implements <see cref="IRewardFunction"/>.</summary>
    static IRewardFunction FromAssembly(string spec)
    {
        int colon = spec.LastIndexOf(':');
        if (colon <= 0 || !spec[..colon].EndsWith(".dll", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"--reward-funcs: unknown reward function '{spec}'; expected one of {string.Join(", ", Kinds.Keys)}, or FILE.dll:Namespace.Type.");
        string path = Path.GetFullPath(spec[..colon]), typeName = spec[(colon + 1)..];
        if (!File.Exists(path))
            throw new FileNotFoundException($"--reward-funcs: the assembly '{path}' does not exist.", path);
        Assembly assembly;
        try
        {
            assembly = Assembly.LoadFrom(path);
        }
        catch (BadImageFormatException e)
        {
            throw new ArgumentException($"--reward-funcs: '{path}' is not a .NET assembly: {e.Message}", e);
        }
        Type type = assembly.GetType(typeName, throwOnError: false)
            ?? throw new ArgumentException($"--reward-funcs: '{path}' has no type '{typeName}' (give the full name, namespace included).");
        if (!typeof(IRewardFunction).IsAssignableFrom(type) || type.IsAbstract || type.GetConstructor(Type.EmptyTypes) is null)
            throw new ArgumentException($"--reward-funcs: '{typeName}' must be a concrete type that implements Alignment.Scoring.IRewardFunction and has a public parameterless constructor.");
        return (IRewardFunction)Activator.CreateInstance(type)!;
    }

    static double Weight(string text) =>
        double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double value) && double.IsFinite(value) ? value
            : throw new ArgumentException($"--reward-weights: '{text.Trim()}' is not a number.");
}
