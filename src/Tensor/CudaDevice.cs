using NativeReasoner.Kernels.Cuda;
using NativeReasoner.Kernels.Cuda.Native;

namespace NativeReasoner;

/// <summary>
/// The CUDA devices: "cuda" (the first NVIDIA GPU, through libcuda.so.1 and NVRTC) and "cuda:emu" (the same
/// kernels and launch code on the CPU emulator, for tests and for trying the backend without a GPU). Each is
/// created on first use and registered with <see cref="Device.Register"/>. Asking for one that is not there
/// throws a <see cref="CudaUnavailableException"/> that says why (no driver, no device, emulator not built).
/// </summary>
public static class CudaDevice
{
    private static readonly Lazy<Device> s_gpu = new(() => Make(CudaBackend.Gpu, "cuda", "cuda:0", "cuda:gpu"));
    private static readonly Lazy<Device> s_emulator = new(() => Make(CudaBackend.Emulator, "cuda:emu", "cuda:emulator"));

    /// <summary>The GPU device.</summary>
    public static Device Get() => s_gpu.Value;

    /// <summary>The emulated device.</summary>
    public static Device GetEmulator() => s_emulator.Value;

    /// <summary>The device for a name starting with "cuda" ("cuda", "cuda:0", "cuda:emu").</summary>
    public static Device ForName(string name)
    {
        string n = name.Trim().ToLowerInvariant();
        return n is "cuda:emu" or "cuda:emulator" ? GetEmulator() : Get();
    }

    /// <summary>True when a GPU is usable, with the reason when not (nothing stays open on failure).</summary>
    public static bool IsAvailable(out string reason) => CudaBackend.TryGet(CudaRuntimeKind.Gpu, out _, out reason);

    private static Device Make(CudaBackend backend, string name, params string[] aliases)
    {
        var d = new Device(DeviceType.Cuda, name, backend.Memory, backend.Kernels);
        Device.Register(d, aliases);
        return d;
    }
}
