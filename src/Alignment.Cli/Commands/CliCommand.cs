namespace Alignment.Cli.Commands;

/// <summary>Builds a subcommand from its argument groups and single options, plus <c>--config</c>.</summary>
internal static class CliCommand
{
    /// <param name="name">The subcommand's name.</param>
    /// <param name="description">One line for <c>--help</c>.</param>
    /// <param name="parts"><see cref="IArgumentGroup"/>s and <see cref="Option"/>s, in help order.</param>
    public static Command New(string name, string description, params object[] parts)
    {
        var command = new Command(name, description);
        foreach (object part in parts)
            foreach (Option option in part is IArgumentGroup group ? group.Options : [(Option)part])
                command.Options.Add(option);
        command.Options.Add(ConfigFile.Option());
        return command;
    }
}
