namespace Alignment.Cli.Arguments;

/// <summary>Options that belong together (the model, the data, the engine's settings …) and are read into one options record.</summary>
internal interface IArgumentGroup
{
    /// <summary>The group's options, in the order <c>--help</c> lists them.</summary>
    IEnumerable<Option> Options { get; }
}
