using System.CommandLine.Help;
using Alignment.Cli.Commands;
using Alignment.Distributed;
using Alignment.Native;
using Alignment.Rl;

namespace Alignment.Cli;

/// <summary>The <c>align</c> command: one subcommand per file in <c>Commands/</c>, parsed by System.CommandLine.</summary>
internal static class AlignCli
{
    /// <summary>Runs a command line; returns the exit code: 0 success, 2 bad arguments or data, 1 any other failure.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error, TextReader? input = null, CancellationToken cancellationToken = default)
    {
        var context = new CliContext(output, error, input ?? TextReader.Null, cancellationToken);
        RootCommand root = Root(context);
        var invocation = new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false };
        if (args.Length == 0)
        {
            root.Parse(["--help"]).Invoke(invocation);
            return 2;
        }
        if (!args[0].StartsWith('-') && root.Subcommands.All(c => c.Name != args[0]))
        {
            error.WriteLine($"align: error: unknown command '{args[0]}'; commands: {string.Join(", ", root.Subcommands.Select(c => c.Name))}.");
            return 2;
        }
        try
        {
            ParseResult parse = root.Parse(ConfigFile.Merge(args, root));
            if (parse.Errors.Count > 0)
            {
                string? previous = null;
                foreach (var problem in parse.Errors)
                {
                    // the value after an unknown option is reported as unknown too: say it once
                    bool valueOfUnknown = previous?.Contains("'--", StringComparison.Ordinal) == true && !problem.Message.Contains("'-", StringComparison.Ordinal)
                        && previous.StartsWith("Unrecognized", StringComparison.Ordinal) && problem.Message.StartsWith("Unrecognized", StringComparison.Ordinal);
                    if (!valueOfUnknown)
                        error.WriteLine($"align: error: {problem.Message}{Suggestion(problem.Message, parse.CommandResult.Command)}");
                    previous = problem.Message;
                }
                error.WriteLine($"Run 'align {parse.CommandResult.Command.Name} --help' for the options.");
                return 2;
            }
            if (parse.Action is not HelpAction)
            {
                TorchRuntime.EnsureLoaded();
                if (parse.GetValue(NumThreads) is { } threads)
                {
                    if (threads is < 1 or > 1024)
                        throw new ArgumentException($"--num-threads must be in [1, 1024], got {threads}.");
                    TorchRuntime.SetThreads(threads);
                }
                context.Join(ProcessGroup.For(DistributedOf(parse), parse.GetValue(MpiLibrary)));
            }
            return EndJobOnFailure(context, parse.Invoke(invocation));
        }
        catch (Exception e) when (e is ArgumentException or FileNotFoundException or DirectoryNotFoundException or InvalidDataException
                                      or FormatException or NotSupportedException or OutputFolderInUseException or DllNotFoundException)
        {
            error.WriteLine($"align: error: {e.Message}");
            return EndJobOnFailure(context, 2);
        }
        catch (Exception e) when (e is InvalidOperationException or IOException)
        {
            error.WriteLine($"align: failed: {e.Message}");
            return EndJobOnFailure(context, 1);
        }
        catch (Exception e)
        {
            string log = Path.Combine(Path.GetTempPath(), $"align-{Environment.ProcessId}-{DateTime.UtcNow:yyyyMMddHHmmss}.log");
            File.WriteAllText(log, e.ToString());
            error.WriteLine($"align: failed: {e.GetType().Name}: {e.Message} (stack trace in {log})");
            return EndJobOnFailure(context, 1);
        }
    }

    /// <summary>
    /// A failure of one process of several ends the whole job (MPI_Abort) with its exit code, rather than leaving the
    /// others waiting in a collective; otherwise returns <paramref name="exitCode"/>.
    /// </summary>
    static int EndJobOnFailure(CliContext context, int exitCode)
    {
        if (exitCode != 0 && context.Processes.WorldSize > 1)
        {
            context.Error.WriteLine($"align: process {context.Processes.Rank} of {context.Processes.WorldSize} failed; ending the job.");
            context.Error.Flush();
            context.Processes.Abort(exitCode);
        }
        return exitCode;
    }

    /// <summary><c>--distributed</c>, for every command: how the processes of a run are found.</summary>
    internal static readonly Option<string?> Distributed = Recursive(CliOption.Choice("distributed",
        "auto: data-parallel over MPI when mpirun/mpiexec/srun started the process; none: one process; mpi: MPI even without a launcher.",
        "auto", ["auto", "none", "mpi"]));

    /// <summary><c>--mpi-library</c>, for every command: the MPI library's file.</summary>
    internal static readonly Option<string?> MpiLibrary = Recursive(CliOption.Text("mpi-library",
        "The MPI library (default: Open MPI's libmpi.so.40 or MPICH's libmpich.so.12, as the launcher suggests; msmpi.dll on Windows).", null));

    internal static DistributedBackend DistributedOf(ParseResult parse) =>
        Enum.Parse<DistributedBackend>(parse.GetValue(Distributed) ?? "auto", ignoreCase: true);

    /// <summary><c>--num-threads</c>, for every command: TorchSharp's CPU threads for the process (default: the physical cores it sees).</summary>
    static readonly Option<int?> NumThreads = Recursive(CliOption.Int("num-threads",
        "Threads of tensor operations on the CPU (default: the physical cores; fewer are faster on a loaded machine).", null));

    static Option<T> Recursive<T>(Option<T> option)
    {
        option.Recursive = true;
        return option;
    }

    static RootCommand Root(CliContext context)
    {
        var root = new RootCommand("align: SFT, reward modelling, preference training and RLHF of Hugging Face model folders, with TRL's option names.")
        {
            HelpName = "align",
        };
        root.Options.Add(NumThreads);
        root.Options.Add(Distributed);
        root.Options.Add(MpiLibrary);
        root.Subcommands.Add(SftCommand.Create(context));
        root.Subcommands.Add(RewardCommand.Create(context));
        root.Subcommands.Add(DpoCommand.Create(context));
        root.Subcommands.Add(RlCommand.Create(context, RlAlgorithm.Ppo));
        root.Subcommands.Add(RlCommand.Create(context, RlAlgorithm.Grpo));
        root.Subcommands.Add(RlCommand.Create(context, RlAlgorithm.Rloo));
        root.Subcommands.Add(GenerateCommand.Create(context));
        root.Subcommands.Add(ChatCommand.Create(context));
        root.Subcommands.Add(EvaluateCommand.Create(context));
        root.Subcommands.Add(EvaluatePairsCommand.Create(context));
        root.Subcommands.Add(ExportGgufCommand.Create(context));
        root.Subcommands.Add(AnnotateCommand.Create(context));
        return root;
    }

    /// <summary>" Did you mean '--x'?" for an unknown option close to a known one, else "".</summary>
    static string Suggestion(string message, Command command)
    {
        int start = message.IndexOf("'--", StringComparison.Ordinal);
        if (start < 0)
            return "";
        int end = message.IndexOf('\'', start + 1);
        string given = message[(start + 1)..(end > start ? end : message.Length)];
        var best = command.Options.Concat(command.Parents.OfType<Command>().SelectMany(p => p.Options.Where(o => o.Recursive))).SelectMany(o => o.Aliases.Prepend(o.Name)).Where(n => n.StartsWith("--", StringComparison.Ordinal))
            .Select(n => (Name: n, Distance: Distance(given, n))).OrderBy(x => x.Distance).FirstOrDefault();
        return best.Name is not null && best.Distance <= Math.Max(2, given.Length / 4) ? $" Did you mean '{best.Name}'?" : "";
    }

    static int Distance(string a, string b)
    {
        var row = Enumerable.Range(0, b.Length + 1).ToArray();
        for (int i = 1; i <= a.Length; i++)
        {
            int diagonal = row[0];
            row[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int above = row[j];
                row[j] = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), diagonal + (a[i - 1] == b[j - 1] ? 0 : 1));
                diagonal = above;
            }
        }
        return row[b.Length];
    }
}
