using System.CommandLine;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace NativeReasoner.Cli;

public static partial class BenchCommand
{
    private static Command BuildPeak()
    {
        var json = new Option<bool>("--json") { Description = "One JSON object per line on stdout." };
        var threads = new Option<int>("--threads") { Description = "Cores to load (default: all)." };
        var seconds = new Option<double>("--time") { Description = "Seconds per trial.", DefaultValueFactory = _ => 1.0 };
        var trials = new Option<int>("--trials") { Description = "Trials per thread count (the best is reported).", DefaultValueFactory = _ => 3 };
        var command = new Command("peak",
            "Measure fp32 FMA peak: a register-resident Vector512 (or Vector256) FMA loop on one core, then on every core at once.")
        {
            json, threads, seconds, trials,
        };
        command.SetAction(parse =>
        {
            int all = parse.GetValue(threads) > 0 ? parse.GetValue(threads) : Environment.ProcessorCount;
            double secs = parse.GetValue(seconds);
            int nTrials = Math.Max(1, parse.GetValue(trials));
            bool asJson = parse.GetValue(json);
            int width = Vector512.IsHardwareAccelerated ? 512 : 256;
            // One core first (the per-core ceiling), then all of them (what a threaded kernel can reach).
            foreach (int t in all > 1 ? new[] { 1, all } : new[] { 1 })
            {
                double best = 0;
                for (int i = 0; i < nTrials; i++) best = Math.Max(best, PeakTrial(t, secs));
                string op = t == all ? "peak" : "peak_1core";
                if (asJson)
                    Console.WriteLine(Json(("op", op), ("shape", new[] { t }), ("ms", secs * 1000), ("gflops", best),
                        ("per_core_gflops", best / t), ("vector_bits", width), ("trials", nTrials)));
                else
                    Console.WriteLine($"{op}: {t} thread(s), {width}-bit FMA: {F(best, "F1")} GFLOP/s " +
                        $"({F(best / t, "F1")} per core; best of {nTrials} × {secs:F1} s)");
            }
            return 0;
        });
        return command;
    }

    /// <summary>
    /// The best of several trials is the peak: load from other processes on a shared machine can only lower
    /// a trial, never raise it above what the cores can do.
    /// </summary>
    private static double PeakTrial(int threads, double seconds)
    {
        var counts = new long[threads];
        var elapsed = new double[threads];
        using var start = new Barrier(threads);
        var workers = new Thread[threads];
        for (int i = 0; i < threads; i++)
        {
            int id = i;
            workers[i] = new Thread(() =>
            {
                start.SignalAndWait();
                var sw = Stopwatch.StartNew();
                long n = 0;
                while (sw.Elapsed.TotalSeconds < seconds) n += Vector512.IsHardwareAccelerated ? Fma512(1 << 16) : Fma256(1 << 16);
                counts[id] = n;
                elapsed[id] = sw.Elapsed.TotalSeconds;
            }, 1 << 20)
            { IsBackground = true };
            workers[i].Start();
        }
        foreach (var w in workers) w.Join();
        double gflops = 0;
        for (int i = 0; i < threads; i++) gflops += counts[i] / elapsed[i] / 1e9;
        return gflops;
    }

    /// <summary>
    /// 16 independent accumulator chains: enough to cover FMA latency (4 cycles) × 2 FMA ports with room to
    /// spare, all in zmm registers, no memory traffic. Returns the flops done (2 per lane per FMA).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static long Fma512(int iterations)
    {
        var m = Vector512.Create(0.9999999f);
        var c = Vector512.Create(1e-7f);
        Vector512<float> a0 = Vector512.Create(1f), a1 = a0 + c, a2 = a1 + c, a3 = a2 + c, a4 = a3 + c, a5 = a4 + c, a6 = a5 + c, a7 = a6 + c;
        Vector512<float> a8 = a7 + c, a9 = a8 + c, a10 = a9 + c, a11 = a10 + c, a12 = a11 + c, a13 = a12 + c, a14 = a13 + c, a15 = a14 + c;
        for (int i = 0; i < iterations; i++)
        {
            a0 = Vector512.FusedMultiplyAdd(a0, m, c); a1 = Vector512.FusedMultiplyAdd(a1, m, c);
            a2 = Vector512.FusedMultiplyAdd(a2, m, c); a3 = Vector512.FusedMultiplyAdd(a3, m, c);
            a4 = Vector512.FusedMultiplyAdd(a4, m, c); a5 = Vector512.FusedMultiplyAdd(a5, m, c);
            a6 = Vector512.FusedMultiplyAdd(a6, m, c); a7 = Vector512.FusedMultiplyAdd(a7, m, c);
            a8 = Vector512.FusedMultiplyAdd(a8, m, c); a9 = Vector512.FusedMultiplyAdd(a9, m, c);
            a10 = Vector512.FusedMultiplyAdd(a10, m, c); a11 = Vector512.FusedMultiplyAdd(a11, m, c);
            a12 = Vector512.FusedMultiplyAdd(a12, m, c); a13 = Vector512.FusedMultiplyAdd(a13, m, c);
            a14 = Vector512.FusedMultiplyAdd(a14, m, c); a15 = Vector512.FusedMultiplyAdd(a15, m, c);
        }
        // Consume the chains so the JIT cannot drop the loop.
        var sum = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11)) + ((a12 + a13) + (a14 + a15));
        if (Vector512.Sum(sum) == 12345f) Console.Write("");
        return (long)iterations * 16 * 16 * 2;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static long Fma256(int iterations)
    {
        var m = Vector256.Create(0.9999999f);
        var c = Vector256.Create(1e-7f);
        Vector256<float> a0 = Vector256.Create(1f), a1 = a0 + c, a2 = a1 + c, a3 = a2 + c, a4 = a3 + c, a5 = a4 + c, a6 = a5 + c, a7 = a6 + c;
        Vector256<float> a8 = a7 + c, a9 = a8 + c, a10 = a9 + c, a11 = a10 + c;
        for (int i = 0; i < iterations; i++)
        {
            a0 = Vector256.FusedMultiplyAdd(a0, m, c); a1 = Vector256.FusedMultiplyAdd(a1, m, c);
            a2 = Vector256.FusedMultiplyAdd(a2, m, c); a3 = Vector256.FusedMultiplyAdd(a3, m, c);
            a4 = Vector256.FusedMultiplyAdd(a4, m, c); a5 = Vector256.FusedMultiplyAdd(a5, m, c);
            a6 = Vector256.FusedMultiplyAdd(a6, m, c); a7 = Vector256.FusedMultiplyAdd(a7, m, c);
            a8 = Vector256.FusedMultiplyAdd(a8, m, c); a9 = Vector256.FusedMultiplyAdd(a9, m, c);
            a10 = Vector256.FusedMultiplyAdd(a10, m, c); a11 = Vector256.FusedMultiplyAdd(a11, m, c);
        }
        var sum = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11));
        if (Vector256.Sum(sum) == 12345f) Console.Write("");
        return (long)iterations * 12 * 8 * 2;
    }
}
