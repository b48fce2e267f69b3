using System.CommandLine;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using NativeReasoner.Kernels.Cpu;
using NativeReasoner.Kernels.Cuda;
using NativeReasoner.Kernels.Cuda.Native;

namespace NativeReasoner.Cli;

/// <summary>`nr info`: what this build can run on — backends, SIMD width, threads, versions.</summary>
public static class InfoCommand
{
    public static Command Build()
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of text." };
        var command = new Command("info", "Show backends, SIMD support, threads and versions.") { json };
        command.SetAction(parse =>
        {
            var facts = Collect();
            if (parse.GetValue(json))
                Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(facts.ToDictionary(kv => kv.Key, kv => kv.Value)));
            else
                foreach (var (key, value) in facts)
                    Console.WriteLine($"{key,-18} {value}");
            return 0;
        });
        return command;
    }

    public static List<KeyValuePair<string, string>> Collect()
    {
        string version = typeof(InfoCommand).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
        int plus = version.IndexOf('+');
        if (plus > 0) version = version[..plus];
        var simd = new List<string>();
        if (Avx512F.IsSupported) simd.Add("avx512f");
        if (Avx512BW.IsSupported) simd.Add("avx512bw");
        if (Avx512Vbmi.IsSupported) simd.Add("avx512vbmi");
        if (Avx2.IsSupported) simd.Add("avx2");
        if (Fma.IsSupported) simd.Add("fma");
        if (AdvSimdSupported()) simd.Add("neon");
        int width = Vector512.IsHardwareAccelerated ? 512 : Vector256.IsHardwareAccelerated ? 256 : Vector128.IsHardwareAccelerated ? 128 : 0;
        return
        [
            new("nr", version),
            new("backends", "cpu (SIMD, threaded), reference (scalar oracle), cuda (--device cuda; cuda:emu = CPU emulator), ilgpu (--device ilgpu)"),
            new("ilgpu", IlgpuSummary()),
            new("cuda", CudaSummary(CudaRuntimeKind.Gpu)),
            new("cuda emulator", CudaSummary(CudaRuntimeKind.Emulator)),
            new("simd width", width == 0 ? "none" : $"{width}-bit vectors ({width / 32} floats)"),
            new("cpu features", simd.Count == 0 ? "none" : string.Join(", ", simd)),
            new("threads", $"{CpuParallel.Threads} (logical processors: {Environment.ProcessorCount}; set NR_NUM_THREADS to change)"),
            new(".net", RuntimeInformation.FrameworkDescription),
            new("os", $"{RuntimeInformation.OSDescription} ({RuntimeInformation.ProcessArchitecture})"),
        ];
    }

    /// <summary>
    /// The accelerators ILGPU sees and the one `--device ilgpu` would use. Listing creates a throwaway ILGPU
    /// context (no accelerator, no kernels compiled).
    /// </summary>
    private static string IlgpuSummary()
    {
        try
        {
            var devices = NativeReasoner.Kernels.Ilgpu.IlgpuBackend.ListDevices();
            var kind = NativeReasoner.Kernels.Ilgpu.IlgpuBackend.KindFromEnvironment();
            string choice = kind == NativeReasoner.Kernels.Ilgpu.IlgpuAcceleratorKind.Auto
                ? "best GPU, else CPU accelerator"
                : kind.ToString();
            return $"{string.Join("; ", devices)} (uses: {choice}; set NR_ILGPU_ACCELERATOR=cpu|cuda|opencl to choose)";
        }
        catch (Exception e)
        {
            return $"unavailable ({e.GetType().Name}: {e.Message})";
        }
    }

    /// <summary>
    /// The GPU the CUDA backend would use (name, arch, SMs, memory, driver, NVRTC) or why it cannot open one;
    /// for the emulator, the library it loads or why it is absent. Opening a backend here is what `--device
    /// cuda` would do first, so the reason printed is the one a command would fail with.
    /// </summary>
    private static string CudaSummary(CudaRuntimeKind kind)
    {
        try
        {
            if (!CudaBackend.TryGet(kind, out var b, out var reason)) return $"unavailable: {reason}";
            return kind == CudaRuntimeKind.Gpu ? b!.Description : b!.LibraryDescription;
        }
        catch (Exception e)
        {
            return $"unavailable ({e.GetType().Name}: {e.Message})";
        }
    }

    private static bool AdvSimdSupported() => System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported;
}
