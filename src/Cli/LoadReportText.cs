using NativeReasoner.IO;
using NativeReasoner.Model;

namespace NativeReasoner.Cli;

/// <summary>
/// The checkpoint-load summary the inference commands print on stderr (stdout stays the command's output).
/// </summary>
public static class LoadReportText
{
    /// <summary>
    /// "weights 12.3 MiB as held, resident 456.7 MiB after load (peak 600.0 MiB)" plus one line per note.
    /// </summary>
    public static string Format(CheckpointLoadReport report) =>
        $"weights {ResidentMemory.Format(report.WeightBytes)} as held, " +
        $"resident {ResidentMemory.Format(report.ResidentBytes)} after load " +
        $"(peak {ResidentMemory.Format(report.PeakResidentBytes)})"
        + string.Concat(report.Notes.Select(n => Environment.NewLine + "  " + n));

    public static void Print(string command, CheckpointLoadReport report) =>
        Console.Error.WriteLine($"nr {command}: {Format(report)}");
}
