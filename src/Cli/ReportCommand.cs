using System.CommandLine;
using NativeReasoner.RL;

namespace NativeReasoner.Cli;

/// <summary>`nr report --run DIR`: redraws a finished run's charts and report.html from the files it wrote.</summary>
public static class ReportCommand
{
    public static Command Build()
    {
        var run = new Option<string>("--run")
        {
            Description = "Run directory of a finished nr train (with summary.json and metrics.jsonl).",
            Required = true,
        };
        var command = new Command("report", "Redraw a run's charts and write RUN/report.html from its metrics.jsonl, " +
                                            "summary.json and samples.md.") { run };
        command.SetAction(parse =>
        {
            try
            {
                Console.WriteLine(RunReport.Write(parse.GetValue(run)!));
                return 0;
            }
            catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine("nr report: " + e.Message);
                return CommandErrors.DocumentedErrorExitCode;
            }
        });
        return command;
    }
}
