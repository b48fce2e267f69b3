// Source: the CUDA Driver API reference (cuInit, cuModuleLoadData, cuLaunchKernel, events) and NVRTC.
using System.Runtime.InteropServices;

namespace NativeReasoner.Kernels.Cuda.Native;

/// <summary>Where the driver API and NVRTC come from.</summary>
public enum CudaRuntimeKind
{
    /// <summary>The installed NVIDIA driver (libcuda.so.1) and NVRTC (libnvrtc.so.13, then .12).</summary>
    Gpu,
    /// <summary>The CPU emulator (libnrcudaemu.so): the same kernels and launch code, no GPU.</summary>
    Emulator,
}

/// <summary>Loads the native libraries of a <see cref="CudaRuntimeKind"/> and binds them.</summary>
internal static class CudaLibraries
{
    /// <summary>Environment variable naming the emulator library (else it is looked for next to the assemblies).</summary>
    public const string EmulatorPathVariable = "NR_CUDA_EMULATOR";

    public const string EmulatorFileName = "libnrcudaemu.so";

    private static readonly string[] DriverNames = OperatingSystem.IsWindows() ? ["nvcuda.dll"] : ["libcuda.so.1"];
    private static readonly string[] NvrtcNames = OperatingSystem.IsWindows()
        ? ["nvrtc64_130_0.dll", "nvrtc64_120_0.dll"]
        : ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"];

    public static (CudaDriverApi Driver, NvrtcApi Nvrtc, string Description) Load(CudaRuntimeKind kind)
    {
        if (kind == CudaRuntimeKind.Emulator)
        {
            string path = EmulatorPath() ?? throw new CudaUnavailableException(
                $"the CUDA emulator ({EmulatorFileName}) was not found next to the assemblies and {EmulatorPathVariable} is not set " +
                "(it is built with the solution where g++ is installed: kernels/cuda/emu/build.sh)");
            if (!NativeLibrary.TryLoad(path, out var h))
                throw new CudaUnavailableException($"the CUDA emulator at {path} could not be loaded");
            return (new CudaDriverApi(h, path), new NvrtcApi(h, path), $"emulator {path}");
        }

        IntPtr driver = IntPtr.Zero;
        string? driverName = null;
        foreach (var n in DriverNames)
            if (NativeLibrary.TryLoad(n, out driver)) { driverName = n; break; }
        if (driverName == null)
            throw new CudaUnavailableException($"no CUDA driver: {string.Join(" / ", DriverNames)} could not be loaded (no NVIDIA driver installed)");

        IntPtr nvrtc = IntPtr.Zero;
        string? nvrtcName = null;
        foreach (var n in NvrtcNames)
            if (NativeLibrary.TryLoad(n, out nvrtc)) { nvrtcName = n; break; }
        if (nvrtcName == null)
            throw new CudaUnavailableException($"no NVRTC: none of {string.Join(", ", NvrtcNames)} could be loaded (install the CUDA toolkit's NVRTC, 12.x or 13.x)");

        return (new CudaDriverApi(driver, driverName), new NvrtcApi(nvrtc, nvrtcName), $"{driverName} + {nvrtcName}");
    }

    /// <summary>
    /// The emulator library: $NR_CUDA_EMULATOR, else next to the app or this assembly, else in the native-library
    /// folders the host resolved from the app's deps.json (where a NuGet package's runtimes/linux-x64/native
    /// lands); null when absent.
    /// </summary>
    public static string? EmulatorPath()
    {
        string? env = Environment.GetEnvironmentVariable(EmulatorPathVariable);
        if (!string.IsNullOrWhiteSpace(env)) return File.Exists(env) ? env : null;
        var folders = new List<string?>
        {
            AppContext.BaseDirectory, Path.GetDirectoryName(typeof(CudaLibraries).Assembly.Location),
        };
        folders.AddRange(NativeSearchFolders(AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") as string));
        return FindEmulator(folders);
    }

    /// <summary>The first of <paramref name="folders"/> holding the emulator library; null when none does.</summary>
    internal static string? FindEmulator(IEnumerable<string?> folders)
    {
        foreach (var dir in folders)
        {
            if (string.IsNullOrEmpty(dir)) continue;
            string p = Path.Combine(dir, EmulatorFileName);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    /// <summary>The host's NATIVE_DLL_SEARCH_DIRECTORIES value split into folders (it ends with a separator).</summary>
    internal static string[] NativeSearchFolders(string? value) =>
        string.IsNullOrEmpty(value)
            ? []
            : value.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
