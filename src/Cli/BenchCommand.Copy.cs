using System.CommandLine;
using NativeReasoner.Kernels.Cpu;

namespace NativeReasoner.Cli;

public static partial class BenchCommand
{
    /// <summary>
    /// `nr bench copy`: host memory copy bandwidth (bytes read + bytes written per second) over a buffer far larger
    /// than the caches, split over the worker threads: the ceiling of a decode step that streams its weights once
    /// (the bandwidth bound of a decode = weight bytes read per token ÷ this, counting reads only, so ÷ half of it).
    /// </summary>
    private static Command BuildCopy()
    {
        var json = new Option<bool>("--json") { Description = "One JSON object per line on stdout." };
        var mib = new Option<int>("--mib")
        {
            Description = "Buffer size in MiB (source and destination each).",
            DefaultValueFactory = _ => 512
        };
        var trials = new Option<int>("--trials")
        {
            Description = "Copies timed (the best is reported).",
            DefaultValueFactory = _ => 5
        };
        var command = new Command("copy",
            "Host memory copy bandwidth over the worker threads (best of several copies).")
        {
            json, mib, trials,
        };
        command.SetAction(parse =>
        {
            long bytes = Math.Max(1, parse.GetValue(mib)) * 1048576L;
            var (readGBs, copyGBs) = CopyBandwidth(bytes, Math.Max(1, parse.GetValue(trials)));
            if (parse.GetValue(json))
                Console.WriteLine(Json(("op", "copy"), ("shape", new[] { (int)(bytes >> 20) }), ("read_gb_per_s",
                    readGBs),
                    ("copy_gb_per_s", copyGBs), ("threads", CpuParallel.Threads)));
            else
                Console.WriteLine($"copy: {bytes >> 20} MiB, {CpuParallel.Threads} threads: " +
                    $"{F(readGBs, "F1")} GB/s read " +
                    $"({F(copyGBs, "F1")} GB/s read + written)");
            return 0;
        });
        return command;
    }

    /// <summary>(GB/s of source read, GB/s read + written) of the best of <paramref name="trials"/> copies.</summary>
    internal static (double Read, double Copy) CopyBandwidth(long bytes, int trials) =>
        HostCopyBandwidth.Measure(bytes, trials);
}
