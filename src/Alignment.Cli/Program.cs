using Alignment.Cli;

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true; // finish the current step, write a checkpoint, exit cleanly
    cancel.Cancel();
};
return AlignCli.Run(args, Console.Out, Console.Error, Console.In, cancel.Token);
