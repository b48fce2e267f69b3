using System.Runtime.CompilerServices;
using System.Text;
using NativeReasoner.Kernels.Cuda.Native;

namespace NativeReasoner.Kernels.Cuda;

/// <summary>
/// One CUDA device: the bound driver API and NVRTC, the device's primary context, one stream that every
/// launch and copy goes to (so stream order makes reuse of freed memory safe, as in PyTorch's caching
/// allocator), the kernel modules, the caching allocator and the <see cref="IKernels"/> implementation.
/// <see cref="Gpu"/> is the real device (libcuda.so.1); <see cref="Emulator"/> runs the same kernels and launch
/// code on the CPU emulator (tests and CI). Every call is checked: a failure throws a <see cref="CudaException"/>
/// naming the call and the CUDA error.
/// </summary>
public sealed unsafe class CudaBackend : IDisposable
{
    private static readonly Lazy<CudaBackend> s_gpu = new(() => Create(CudaRuntimeKind.Gpu));
    private static readonly Lazy<CudaBackend> s_emulator = new(() => Create(CudaRuntimeKind.Emulator));

    /// <summary>The first NVIDIA GPU (created on first use; throws <see cref="CudaUnavailableException"/> without one).</summary>
    public static CudaBackend Gpu => s_gpu.Value;

    /// <summary>The CPU emulator (throws <see cref="CudaUnavailableException"/> when it was not built).</summary>
    public static CudaBackend Emulator => s_emulator.Value;

    internal CudaDriverApi Api { get; }
    internal NvrtcApi Nvrtc { get; }

    public CudaRuntimeKind Kind { get; }
    public string LibraryDescription { get; }
    public string DeviceName { get; }
    public int ComputeMajor { get; }
    public int ComputeMinor { get; }
    public int MultiprocessorCount { get; }
    public int MaxSharedMemoryPerBlockOptin { get; }
    public int L2CacheBytes { get; }
    public long TotalMemoryBytes { get; }
    public int DriverVersion { get; }

    /// <summary>"sm_90" for compute capability 9.0.</summary>
    public string Arch => $"sm_{ComputeMajor}{ComputeMinor}";

    internal IntPtr Context { get; }

    /// <summary>The stream every launch and copy of this backend goes to.</summary>
    public IntPtr Stream { get; }

    public CudaMemory Memory { get; }
    public CudaKernels Kernels { get; }
    internal CudaModules Modules { get; }

    private readonly int _device;
    private bool _disposed;

    private CudaBackend(CudaRuntimeKind kind)
    {
        Kind = kind;
        (Api, Nvrtc, LibraryDescription) = CudaLibraries.Load(kind);
        int r = Api.cuInit(0);
        if (r != 0) throw new CudaUnavailableException($"cuInit failed: {Api.Describe(r)} (is an NVIDIA GPU present and the driver loaded?)");
        int count, version;
        Check(Api.cuDriverGetVersion(&version));
        DriverVersion = version;
        Check(Api.cuDeviceGetCount(&count));
        if (count == 0) throw new CudaUnavailableException("no CUDA device: the driver reports 0 devices");
        int device;
        Check(Api.cuDeviceGet(&device, 0));
        _device = device;
        byte* name = stackalloc byte[256];
        Check(Api.cuDeviceGetName(name, 256, device));
        DeviceName = new string((sbyte*)name);
        ComputeMajor = Attribute(CudaConstants.AttrComputeCapabilityMajor);
        ComputeMinor = Attribute(CudaConstants.AttrComputeCapabilityMinor);
        MultiprocessorCount = Attribute(CudaConstants.AttrMultiprocessorCount);
        MaxSharedMemoryPerBlockOptin = Attribute(CudaConstants.AttrMaxSharedMemoryPerBlockOptin);
        L2CacheBytes = Attribute(CudaConstants.AttrL2CacheSize);
        nuint total;
        Check(Api.cuDeviceTotalMem_v2(&total, device));
        TotalMemoryBytes = (long)total;
        if (ComputeMajor < 7 || (ComputeMajor == 7 && ComputeMinor < 5))
            throw new CudaUnavailableException($"{DeviceName} is {Arch}; the CUDA backend needs sm_75 or newer (CUDA 13 cannot target older GPUs)");

        IntPtr ctx;
        Check(Api.cuDevicePrimaryCtxRetain(&ctx, device));
        Context = ctx;
        Check(Api.cuCtxSetCurrent(ctx));
        IntPtr stream;
        Check(Api.cuStreamCreate(&stream, CudaConstants.StreamNonBlocking));
        Stream = stream;
        Modules = new CudaModules(this);
        Memory = new CudaMemory(this);
        Kernels = new CudaKernels(this);
    }

    private static CudaBackend Create(CudaRuntimeKind kind)
    {
        var b = new CudaBackend(kind);
        // Deterministic teardown before the driver unloads at exit.
        AppDomain.CurrentDomain.ProcessExit += (_, _) => b.Dispose();
        return b;
    }

    /// <summary>Tries to open a backend; false with the reason (no driver, no device, emulator not built).</summary>
    public static bool TryGet(CudaRuntimeKind kind, out CudaBackend? backend, out string reason)
    {
        try
        {
            backend = kind == CudaRuntimeKind.Gpu ? Gpu : Emulator;
            reason = "";
            return true;
        }
        catch (CudaUnavailableException e)
        {
            backend = null;
            reason = e.Message;
            return false;
        }
        catch (CudaException e)
        {
            backend = null;
            reason = e.Message;
            return false;
        }
    }

    /// <summary>One line for `nr info`: device, arch, memory, libraries.</summary>
    public string Description =>
        $"{DeviceName} ({Arch}, {MultiprocessorCount} SMs, {TotalMemoryBytes / (1L << 30)} GiB; driver {DriverVersion / 1000}.{DriverVersion % 1000 / 10}, " +
        $"NVRTC {Nvrtc.Version()}; {LibraryDescription})";

    private int Attribute(int attribute)
    {
        int v;
        Check(Api.cuDeviceGetAttribute(&v, attribute, _device));
        return v;
    }

    [ThreadStatic] private static IntPtr t_current;

    /// <summary>Makes the context current on the calling thread (needed on every thread that touches CUDA).</summary>
    internal void MakeCurrent()
    {
        if (t_current == Context) return;
        Check(Api.cuCtxSetCurrent(Context));
        t_current = Context;
    }

    /// <summary>
    /// Emulator only: the order in which the emulator runs a block's threads between barriers for launches from the
    /// calling thread, until changed. Running the same kernels forward, reversed and shuffled exposes missing
    /// barriers in either direction (see kernels/cuda/emu/emu_runtime.cpp).
    /// </summary>
    public void SetEmulatorSchedule(EmulatorSchedule schedule, ulong seed = 0)
    {
        if (Api.nr_emu_set_schedule == null) throw new NotSupportedException("only the CUDA emulator has a thread schedule");
        Api.nr_emu_set_schedule((int)schedule, seed);
    }

    /// <summary>
    /// Compiles (NVRTC, for this device's arch) and loads every kernel file now, each timed, going on after a
    /// failure: the GPU check's first stage, so a compile error is reported per file before anything runs.
    /// </summary>
    public IReadOnlyList<KernelCompileResult> CompileAllKernels() => Modules.CompileAllTimed();

    /// <summary>Waits for everything queued on <see cref="Stream"/>.</summary>
    public void Synchronize()
    {
        MakeCurrent();
        Check(Api.cuStreamSynchronize(Stream));
    }

    /// <summary>Throws a <see cref="CudaException"/> naming the call when a CUresult is not CUDA_SUCCESS.</summary>
    internal void Check(int result, [CallerArgumentExpression(nameof(result))] string call = "")
    {
        if (result == 0) return;
        throw new CudaException(CallName(call), result, Api.Describe(result));
    }

    /// <summary>"Api.cuMemAlloc_v2(&amp;p, n)" → "cuMemAlloc_v2".</summary>
    internal static string CallName(string expression)
    {
        int start = expression.IndexOf("cu", StringComparison.Ordinal);
        int nv = expression.IndexOf("nvrtc", StringComparison.Ordinal);
        if (nv >= 0 && (start < 0 || nv < start)) start = nv;
        if (start < 0) return expression;
        int end = expression.IndexOf('(', start);
        return end > start ? expression[start..end] : expression[start..];
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            MakeCurrent();
            Api.cuStreamSynchronize(Stream);
            Memory.ReleaseAll();
            Modules.UnloadAll();
            Api.cuStreamDestroy_v2(Stream);
            Api.cuDevicePrimaryCtxRelease_v2(_device);
        }
        catch (CudaException)
        {
            // Teardown at exit: the driver may already be shutting down.
        }
    }

    internal static string Utf8(byte* s) => s == null ? "" : Encoding.UTF8.GetString(s, new ReadOnlySpan<byte>(s, int.MaxValue).IndexOf((byte)0));
}

/// <summary>The emulator's order of resuming a block's threads (see <see cref="CudaBackend.SetEmulatorSchedule"/>).</summary>
public enum EmulatorSchedule
{
    Forward = 0,
    Reverse = 1,
    Random = 2,
}
