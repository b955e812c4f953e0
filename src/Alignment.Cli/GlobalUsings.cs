// Namespaces every command of the tool reads from.
global using System.CommandLine;
global using Alignment.Cli.Arguments;
global using Alignment.Data;
global using Alignment.Models;
global using Alignment.Training;
