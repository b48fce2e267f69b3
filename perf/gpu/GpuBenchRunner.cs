using System.Diagnostics;
using System.Runtime.InteropServices;
using NativeReasoner.Cli;
using NativeReasoner.Kernels.Cuda;
using NativeReasoner.Kernels.Cuda.Native;

namespace NativeReasoner.Perf.Gpu;

/// <summary>
/// `nr-gpubench`: runs the selected <see cref="GpuBenchCatalog"/> benchmarks on one device and prints one row per
/// op (a JSON object per line with --json: first a "device" line with the card and its peaks, then the ops). An op
/// whose kernel is not written yet, or that the device lacks, is a row with status "not_implemented" /
/// "unsupported"; the run goes on. Exit code: 0 when every row is ok, not_implemented or unsupported (the table
/// shows those), 1 when any op failed with an error (a crash, a CUDA error, an out-of-memory), 2 when the device
/// or the --only names are wrong.
/// </summary>
internal static class GpuBenchRunner
{
    public static int Run(string deviceName, bool smoke, bool json, IReadOnlyList<string> only, TextWriter output,
        TextWriter error, bool bf16 = false)
    {
        var (picked, unknown) = GpuBenchCatalog.Select(only);
        if (unknown.Count > 0)
        {
            error.WriteLine($"nr-gpubench: no benchmark named {string.Join(", ", unknown.Select(u => $"'{u}'"))}; " +
                            $"known: {string.Join(", ", GpuBenchCatalog.All.Select(b => b.Name))}");
            return 2;
        }
        Device device;
        try
        {
            device = Device.Parse(deviceName);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or CudaException)
        {
            error.WriteLine($"nr-gpubench: {e.Message}");
            return 2;
        }

        var sizes = smoke ? GpuBenchSizes.Smoke : GpuBenchSizes.Full;
        string card = CardName(device);
        var peaks = GpuBenchPeaks.For(card);
        if (json)
            output.WriteLine(JsonLine.Object(("op", "device"), ("impl", "ours"), ("device", device.Name), ("card", card),
                ("kernels", device.Kernels.Name), ("peak_bf16_tflops", peaks?.Bf16), ("peak_fp32_tflops", peaks?.Fp32),
                ("smoke", smoke), ("bf16_autocast", bf16), ("date", DateTime.UtcNow.ToString("yyyy-MM-dd")),
                ("benchmarks", picked.Select(b => b.Name).ToArray())));
        else
            output.WriteLine($"nr-gpubench on {device.Name} ({card}; {device.Kernels.Name}){(smoke ? ", smoke sizes" : "")}; " +
                             $"peaks: {(peaks is { } p ? $"bf16 {p.Bf16}, fp32 {p.Fp32} TFLOP/s ({p.Card})" : "unknown")}");

        var counts = new Dictionary<string, int>();
        void Emit(GpuBenchRow row)
        {
            counts[row.Status] = counts.GetValueOrDefault(row.Status) + 1;
            output.WriteLine(json ? row.ToJson(device.Name) : row.ToText());
            output.Flush();
        }

        var total = Stopwatch.StartNew();
        using (var ctx = new GpuBenchContext(device, sizes, Emit) { CardName = card, Bf16Autocast = bf16 })
        {
            foreach (var bench in picked)
            {
                int before = ctx.RowsEmitted;
                try
                {
                    bench.Run(ctx);
                }
                catch (Exception e)
                {
                    // The setup failed before (or between) its measurements: a row for each op it planned and did not
                    // reach, or one under the benchmark's name.
                    var left = ctx.TakeUnreported();
                    if (left.Count == 0) left = [new GpuBenchOp(bench.Name, [], "-")];
                    foreach (var op in left) ctx.Emit(new GpuBenchRow(op, StatusOf(e), null, Describe(e), []));
                }
                finally
                {
                    ctx.TakeUnreported();
                    try
                    {
                        ctx.ReleaseBuffers();
                    }
                    catch (Exception e)
                    {
                        ctx.Emit(new GpuBenchRow(new GpuBenchOp(bench.Name + "/release", [], "-"), GpuBenchRow.Failed, null, Describe(e), []));
                    }
                }
                if (ctx.RowsEmitted == before)
                    ctx.Emit(new GpuBenchRow(new GpuBenchOp(bench.Name, [], "-"), GpuBenchRow.Failed, null, "emitted no row", []));
            }
        }
        string summary = string.Join(", ", counts.OrderBy(kv => kv.Key).Select(kv => $"{kv.Value} {kv.Key}"));
        error.WriteLine($"nr-gpubench: {summary} in {total.Elapsed.TotalSeconds:F1} s");
        return counts.ContainsKey(GpuBenchRow.Failed) ? 1 : 0;
    }

    /// <summary>The card's name for a CUDA GPU, else a description of the device.</summary>
    public static string CardName(Device device)
    {
        if (device.Kernels is CudaKernels ck)
            return ck.Backend.Kind == CudaRuntimeKind.Gpu ? ck.Backend.DeviceName : "cuda emulator (CPU)";
        return $"{device.Name} ({Environment.ProcessorCount} logical processors, {RuntimeInformation.ProcessArchitecture})";
    }

    /// <summary>
    /// The exception that says what went wrong: a NotImplementedException (a missing kernel) or NotSupportedException
    /// anywhere in the chain of inner exceptions wins, else the innermost one (wrappers such as
    /// TargetInvocationException or a one-item AggregateException peeled off).
    /// </summary>
    public static Exception Root(Exception e)
    {
        var chain = new List<Exception>();
        for (Exception? x = e; x != null && chain.Count < 16;
             x = x is AggregateException { InnerExceptions.Count: 1 } ae ? ae.InnerExceptions[0] : x.InnerException)
            chain.Add(x);
        return chain.FirstOrDefault(x => x is NotImplementedException)
               ?? chain.FirstOrDefault(x => x is NotSupportedException)
               ?? chain[^1];
    }

    public static string StatusOf(Exception e) => Root(e) switch
    {
        NotImplementedException => GpuBenchRow.NotImplemented,
        NotSupportedException => GpuBenchRow.Unsupported,
        _ => GpuBenchRow.Failed,
    };

    public static string Describe(Exception e)
    {
        var r = Root(e);
        string msg = r.Message;
        int nl = msg.IndexOf('\n');
        if (nl >= 0) msg = msg[..nl];
        return $"{r.GetType().Name}: {msg}";
    }
}
