using System.CommandLine;

namespace NativeReasoner.Cli;

/// <summary>The `nr` command: one subcommand per job.</summary>
public static class Program
{
    /// <summary>Exit codes: 0 done, 1 a documented error (bad input), 2 a usage error, 3 a bug (see
    /// <see cref="CommandErrors"/>).</summary>
    public static int Main(string[] args) => CommandErrors.Run(CommandErrors.Guard(BuildRoot()), args);

    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("NativeReasoner: a from-scratch .NET engine for reasoning models (DeepSeek-V3 / R1 family).");
        root.Subcommands.Add(InfoCommand.Build());
        root.Subcommands.Add(BenchCommand.Build());
        root.Subcommands.Add(CheckCommand.Build());
        root.Subcommands.Add(LogitsCommand.Build());
        root.Subcommands.Add(GrpoGradCommand.Build());
        root.Subcommands.Add(GenerateCommand.Build());
        root.Subcommands.Add(GenerateCommand.BuildEval());
        root.Subcommands.Add(ChatCommand.Build());
        root.Subcommands.Add(PipelineCommand.Build());
        root.Subcommands.Add(TrainCommand.Build());
        root.Subcommands.Add(ExperimentCommand.Build());
        root.Subcommands.Add(ReportCommand.Build());
        root.Subcommands.Add(TokenizeCommand.Build());
        root.Subcommands.Add(ServeCommand.Build());
        root.Subcommands.Add(QuantizeCommand.Build());
        root.Subcommands.Add(ExportCommand.Build());
        return root;
    }
}
