using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace NativeReasoner.Kernels.Ilgpu;

/// <summary>Which kind of ILGPU accelerator to run on.</summary>
public enum IlgpuAcceleratorKind
{
    /// <summary>The best GPU if one is present (CUDA before OpenCL), else ILGPU's CPU accelerator.</summary>
    Auto,
    Cpu,
    Cuda,
    OpenCL,
}

/// <summary>
/// One ILGPU context with one accelerator, plus the memory and kernels that run on it. All launches and
/// copies go through <see cref="Sync"/> on the accelerator's default stream: ILGPU streams are not meant to
/// be driven by several threads at once, and tests (and the trainer's threads) may call in concurrently.
/// </summary>
public sealed class IlgpuBackend : IDisposable
{
    /// <summary>Environment variable that overrides the accelerator choice: cpu, cuda or opencl.</summary>
    public const string AcceleratorEnvironmentVariable = "NR_ILGPU_ACCELERATOR";

    private static readonly Lazy<IlgpuBackend> s_shared = new(() =>
    {
        var b = new IlgpuBackend(IlgpuAcceleratorKind.Auto);
        // Deterministic teardown: the CUDA/OpenCL driver contexts must be released before the runtime exits.
        AppDomain.CurrentDomain.ProcessExit += (_, _) => b.Dispose();
        return b;
    });

    /// <summary>The process-wide backend (created on first use, disposed at process exit).</summary>
    public static IlgpuBackend Shared => s_shared.Value;

    /// <summary>True once <see cref="Shared"/> has been created.</summary>
    public static bool SharedCreated => s_shared.IsValueCreated;

    public Context Context { get; }
    public Accelerator Accelerator { get; }
    public IlgpuMemory Memory { get; }
    public IlgpuKernels Kernels { get; }

    /// <summary>Held around every launch and copy (see the class comment).</summary>
    internal object Sync { get; } = new();

    private bool _disposed;

    /// <param name="kind">Accelerator to use; <see cref="IlgpuAcceleratorKind.Auto"/> consults the environment variable first.</param>
    public IlgpuBackend(IlgpuAcceleratorKind kind = IlgpuAcceleratorKind.Auto)
    {
        if (kind == IlgpuAcceleratorKind.Auto) kind = KindFromEnvironment();
        // O1 keeps compile times short (every kernel is JIT-compiled on first use) while still inlining
        // the small helpers the kernels are built from. Algorithms adds XMath intrinsics.
        Context = Context.Create(b => b.Default().EnableAlgorithms().Optimize(OptimizationLevel.O1));
        Device device = PickDevice(Context, kind);
        Accelerator = device.CreateAccelerator(Context);
        Memory = new IlgpuMemory(this);
        Kernels = new IlgpuKernels(this);
    }

    /// <summary>Short description: "Cuda: NVIDIA H100 ..." or "CPU: CPUAccelerator".</summary>
    public string Description => $"{Accelerator.AcceleratorType}: {Accelerator.Name} (warp {Accelerator.WarpSize}, " +
        $"max group {Accelerator.MaxNumThreadsPerGroup}, shared {Accelerator.MaxSharedMemoryPerGroup / 1024} KiB)";

    /// <summary>Reads <see cref="AcceleratorEnvironmentVariable"/>; Auto when unset.</summary>
    public static IlgpuAcceleratorKind KindFromEnvironment()
    {
        string? v = Environment.GetEnvironmentVariable(AcceleratorEnvironmentVariable);
        return ParseKind(v);
    }

    public static IlgpuAcceleratorKind ParseKind(string? v) => v?.Trim().ToLowerInvariant() switch
    {
        null or "" or "auto" => IlgpuAcceleratorKind.Auto,
        "cpu" => IlgpuAcceleratorKind.Cpu,
        "cuda" => IlgpuAcceleratorKind.Cuda,
        "opencl" or "cl" => IlgpuAcceleratorKind.OpenCL,
        _ => throw new ArgumentException($"unknown ILGPU accelerator '{v}' (expected cpu, cuda or opencl)"),
    };

    private static Device PickDevice(Context context, IlgpuAcceleratorKind kind)
    {
        switch (kind)
        {
            case IlgpuAcceleratorKind.Cpu:
                return context.GetCPUDevice(0);
            case IlgpuAcceleratorKind.Cuda:
                if (context.GetCudaDevices().Count == 0) throw new NotSupportedException("ILGPU found no CUDA device");
                return context.GetCudaDevice(0);
            case IlgpuAcceleratorKind.OpenCL:
                if (context.GetCLDevices().Count == 0) throw new NotSupportedException("ILGPU found no OpenCL device");
                return context.GetCLDevice(0);
            default:
                if (context.GetCudaDevices().Count > 0) return context.GetCudaDevice(0);
                // OpenCL CPU drivers exist too; only a GPU beats ILGPU's own CPU accelerator.
                foreach (var d in context.GetCLDevices())
                    if (d.DeviceType == CLDeviceType.CL_DEVICE_TYPE_GPU) return d;
                return context.GetCPUDevice(0);
        }
    }

    /// <summary>Every device ILGPU can see, one line each (for `nr info`), without creating accelerators.</summary>
    public static IReadOnlyList<string> ListDevices()
    {
        using var context = Context.Create(b => b.Default());
        return context.Devices.Select(d => $"{d.AcceleratorType}: {d.Name}").ToList();
    }

    public void Dispose()
    {
        lock (Sync)
        {
            if (_disposed) return;
            _disposed = true;
            Memory.ReleaseAll();
            Accelerator.Dispose();
            Context.Dispose();
        }
    }
}
