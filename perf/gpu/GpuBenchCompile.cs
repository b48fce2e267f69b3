using System.Diagnostics;
using NativeReasoner.Cli;
using NativeReasoner.Kernels.Cuda;

namespace NativeReasoner.Perf.Gpu;

/// <summary>
/// `nr-gpubench --compile`: NVRTC compiles every kernel file of kernels/cuda for the device's own arch (sm_90a on an
/// H100) and loads it, one row per file with its time or NVRTC's error, going on after a failure. The GPU check runs
/// it first: a kernel that does not compile for the card is named before any check or benchmark trips over it, and
/// the compiled images land in the disk cache the later stages read. Exit code 0 when every file compiled, 1 when
/// any failed, 2 when the device is not a CUDA device.
/// </summary>
internal static class GpuBenchCompile
{
    public static int Run(string deviceName, bool json, TextWriter output, TextWriter error)
    {
        Device device;
        try
        {
            device = Device.Parse(deviceName);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or CudaException)
        {
            error.WriteLine($"nr-gpubench --compile: {e.Message}");
            return 2;
        }
        if (device.Kernels is not CudaKernels cuda)
        {
            error.WriteLine($"nr-gpubench --compile: device '{device.Name}' is not a CUDA device " +
                            "(expected cuda or cuda:emu)");
            return 2;
        }
        var total = Stopwatch.StartNew();
        var results = cuda.Backend.CompileAllKernels();
        int failed = 0;
        foreach (var r in results)
        {
            if (!r.Ok) failed++;
            string firstLine = r.Error?.Split('\n', 2)[0] ?? "";
            if (json)
                output.WriteLine(JsonLine.Object(("op", "nvrtc_compile"), ("impl", "ours"), ("device", device.Name),
                    ("file", r.File), ("status", r.Ok ? "ok" : "error"), ("ms", r.Milliseconds),
                    ("arch", cuda.Backend.Arch), ("error", r.Error)));
            else
                output.WriteLine($"{r.File,-28} {(r.Ok ? "ok" : "FAILED"),-7} {r.Milliseconds,10:F1} ms  {firstLine}");
            output.Flush();
        }
        error.WriteLine($"nr-gpubench --compile: {results.Count - failed} of {results.Count} kernel files " +
                        "compiled for " +
                        $"{cuda.Backend.Arch} in {total.Elapsed.TotalSeconds:F1} s");
        if (failed > 0)
            foreach (var r in results.Where(r => !r.Ok)) error.WriteLine($"--- {r.File}\n{r.Error}");
        return failed == 0 ? 0 : 1;
    }
}
