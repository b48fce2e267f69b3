using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using NativeReasoner.Kernels.Cpu;

namespace NativeReasoner.Cli;

/// <summary>
/// `nr bench gemm | attention | peak | model`: kernel timings on this machine. Every measurement warms up first (so
/// tiered JIT has promoted the hot loops and caches/pages are warm), then times repeated calls and reports
/// the median, which a shared, noisy machine disturbs far less than the mean. With --json each result is
/// one JSON object per line on stdout: {"op": ..., "shape": [...], "ms": median, "gflops": ...}.
/// </summary>
public static partial class BenchCommand
{
    public static Command Build()
    {
        var command = new Command("bench", "Time CPU kernels (median of repeated runs after warm-up); device benchmarks are nr-gpubench (perf/gpu).");
        command.Subcommands.Add(BuildGemm());
        command.Subcommands.Add(BuildAttention());
        command.Subcommands.Add(BuildPeak());
        command.Subcommands.Add(BuildModel());
        command.Subcommands.Add(BuildCopy());
        command.Subcommands.Add(BuildMakeModel());
        command.Subcommands.Add(BuildServe());
        return command;
    }

    /// <summary>Options every bench subcommand shares.</summary>
    private sealed class Common
    {
        public readonly Option<bool> Json = new("--json") { Description = "One JSON object per line on stdout." };
        public readonly Option<int> Threads = new("--threads") { Description = "Worker threads (default: all cores)." };
        public readonly Option<double> Warmup = new("--warmup") { Description = "Warm-up seconds.", DefaultValueFactory = _ => 1.0 };
        public readonly Option<double> Time = new("--time") { Description = "Measured seconds (at least --min-reps runs).", DefaultValueFactory = _ => 2.0 };
        public readonly Option<int> MinReps = new("--min-reps") { Description = "Fewest measured runs.", DefaultValueFactory = _ => 5 };

        public void AddTo(Command c)
        {
            c.Options.Add(Json);
            c.Options.Add(Threads);
            c.Options.Add(Warmup);
            c.Options.Add(Time);
            c.Options.Add(MinReps);
        }

        /// <summary>Applies --threads before the worker pool starts; returns the thread count in use.</summary>
        public int ApplyThreads(ParseResult parse)
        {
            int t = parse.GetValue(Threads);
            if (t > 0) CpuParallel.SetThreadCount(t);
            return CpuParallel.Threads;
        }

        public Timing Measure(ParseResult parse, Action run) =>
            BenchCommand.Measure(run, parse.GetValue(Warmup), parse.GetValue(Time), Math.Max(1, parse.GetValue(MinReps)));
    }

    /// <summary>CpuMs: process CPU time per call (all threads), which waiting for a busy core does not inflate.</summary>
    public readonly record struct Timing(double MedianMs, double MinMs, int Reps, double CpuMs);

    /// <summary>
    /// Warm-up for <paramref name="warmupSeconds"/>, then timed single calls until both
    /// <paramref name="seconds"/> and <paramref name="minReps"/> are reached; median and best of them.
    /// </summary>
    public static Timing Measure(Action run, double warmupSeconds, double seconds, int minReps)
    {
        var sw = Stopwatch.StartNew();
        do run(); while (sw.Elapsed.TotalSeconds < warmupSeconds);
        // Leftover garbage from setup should not be collected in the middle of a timed call.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var samples = new List<double>(256);
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        sw.Restart();
        while (samples.Count < minReps || (sw.Elapsed.TotalSeconds < seconds && samples.Count < 100_000))
        {
            long t0 = Stopwatch.GetTimestamp();
            run();
            samples.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
        }
        double cpuMs = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMilliseconds / samples.Count;
        samples.Sort();
        int n = samples.Count;
        double median = n % 2 == 1 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
        return new Timing(median, samples[0], n, cpuMs);
    }

    /// <summary>Fills n floats with uniform values in [−scale, scale) (fixed seed: runs are comparable).</summary>
    internal static unsafe float* RandomBuffer(long n, int seed, float scale = 1f)
    {
        var p = (float*)NativeMemory.AlignedAlloc((nuint)(Math.Max(n, 1) * sizeof(float)), 64);
        var rng = new Random(seed);
        for (long i = 0; i < n; i++) p[i] = scale * (2f * (float)rng.NextDouble() - 1f);
        return p;
    }

    internal static unsafe void Free(float* p) => NativeMemory.AlignedFree(p);

    /// <summary>A flat JSON object from ordered key/value pairs (numbers, bools, strings, int arrays).</summary>
    internal static string Json(params (string Key, object Value)[] fields)
    {
        var sb = new StringBuilder("{");
        for (int i = 0; i < fields.Length; i++)
        {
            if (i > 0) sb.Append(", ");
            sb.Append('"').Append(fields[i].Key).Append("\": ");
            AppendValue(sb, fields[i].Value);
        }
        return sb.Append('}').ToString();
    }

    private static void AppendValue(StringBuilder sb, object v)
    {
        switch (v)
        {
            case string s: sb.Append(System.Text.Json.JsonSerializer.Serialize(s)); break;
            case bool b: sb.Append(b ? "true" : "false"); break;
            case double d: sb.Append(double.IsFinite(d) ? d.ToString("G6", CultureInfo.InvariantCulture) : "null"); break;
            case int[] a: sb.Append('[').Append(string.Join(", ", a)).Append(']'); break;
            case IFormattable f: sb.Append(f.ToString(null, CultureInfo.InvariantCulture)); break;
            default: sb.Append(System.Text.Json.JsonSerializer.Serialize(v.ToString())); break;
        }
    }

    internal static string F(double v, string fmt = "F3") => v.ToString(fmt, CultureInfo.InvariantCulture);
}
