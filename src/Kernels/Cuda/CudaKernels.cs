// Source: the op set of IKernels.cs (PyTorch semantics, stated in each op's doc comment).
using System.Collections.Concurrent;

namespace NativeReasoner.Kernels.Cuda;

/// <summary>
/// <see cref="IKernels"/> on a CUDA device: every pointer is a device address (CUdeviceptr) from
/// <see cref="CudaMemory"/>, every op one or a few launches of a kernel from kernels/cuda on the backend's
/// stream. Launches are asynchronous; host reads go through <see cref="CudaMemory.CopyToHost"/>, which waits
/// on the stream. Op families live in the partial files (CudaKernels.Elementwise.cs, .Rows.cs, .Gemm.cs,
/// .Attention.cs, .Moe.cs), each beside the .cu file it launches.
/// Launch arguments are passed as cuLaunchKernel wants them: an array of pointers to the argument values,
/// built on the stack (<c>void** a = stackalloc void*[n]; a[0] = &amp;x;</c>), so a launch allocates nothing.
/// </summary>
public sealed unsafe partial class CudaKernels : IKernels, IMultiTensorAdamW, IGrpoTokenLoss
{
    private readonly CudaBackend _backend;
    private readonly ConcurrentDictionary<IntPtr, int> _sharedLimit = new();

    internal CudaKernels(CudaBackend backend) => _backend = backend;

    public CudaBackend Backend => _backend;

    public string Name => _backend.Kind == Native.CudaRuntimeKind.Emulator ? "cuda (emulator)" : $"cuda ({_backend.DeviceName})";

    /// <summary>Threads per block of the 1-D (elementwise) kernels.</summary>
    internal const int ElementwiseBlock = 256;

    /// <summary>
    /// Blocks for a grid-stride loop over n items with <paramref name="block"/> threads a block: enough to fill
    /// the device (32 blocks per SM), never more than the items need.
    /// </summary>
    internal uint GridFor(long n, int block = ElementwiseBlock)
    {
        long needed = Math.Max(1, (n + block - 1) / block);
        long cap = (long)_backend.MultiprocessorCount * 32;
        return (uint)Math.Min(needed, cap);
    }

    [ThreadStatic] private static long t_launches;

    /// <summary>
    /// Kernel launches queued by the calling thread so far, on any CUDA backend: how tests see that a fused path
    /// really is one launch (a thread-static, so tests running in parallel do not count each other's).
    /// </summary>
    public static long LaunchesOnThisThread => t_launches;

    /// <summary>Launches <paramref name="kernel"/> of <paramref name="file"/> on the backend's stream.</summary>
    internal void Launch(string file, string kernel, uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, uint blockZ,
        int sharedBytes, void** args)
    {
        t_launches++;
        KernelDispatchCounters.Count(kernel);
        _backend.MakeCurrent();
        IntPtr fn = _backend.Modules.Function(file, kernel);
        if (sharedBytes > 48 * 1024) RaiseSharedLimit(fn, kernel, sharedBytes);
        int r = _backend.Api.cuLaunchKernel(fn, gridX, gridY, gridZ, blockX, blockY, blockZ, (uint)sharedBytes, _backend.Stream, args, null);
        if (r != 0)
            throw new CudaException($"cuLaunchKernel({kernel}, grid {gridX}x{gridY}x{gridZ}, block {blockX}x{blockY}x{blockZ}, {sharedBytes} B shared)",
                r, _backend.Api.Describe(r));
    }

    /// <summary>1-D launch.</summary>
    internal void Launch(string file, string kernel, uint grid, uint block, int sharedBytes, void** args) =>
        Launch(file, kernel, grid, 1, 1, block, 1, 1, sharedBytes, args);

    private void RaiseSharedLimit(IntPtr fn, string kernel, int bytes)
    {
        if (_sharedLimit.TryGetValue(fn, out int have) && have >= bytes) return;
        if (bytes > _backend.MaxSharedMemoryPerBlockOptin)
            throw new NotSupportedException($"{kernel} needs {bytes} bytes of shared memory; {_backend.DeviceName} allows {_backend.MaxSharedMemoryPerBlockOptin}");
        _backend.Check(_backend.Api.cuFuncSetAttribute(fn, Native.CudaConstants.FuncAttrMaxDynamicSharedSizeBytes, bytes));
        _sharedLimit[fn] = bytes;
    }

    /// <summary>A device scratch buffer of <paramref name="bytes"/> (from the caching allocator; release after the launch is queued).</summary>
    internal Memory.NativeBuffer Scratch(long bytes) => _backend.Memory.Allocate(Math.Max(bytes, 1));

    /// <summary>
    /// Uploads a small host array (descriptor tables, shapes) into a scratch buffer, queued on the stream without
    /// waiting (<see cref="CudaMemory.CopyFromHostAsync"/>), so the launches around it keep the GPU busy.
    /// </summary>
    internal Memory.NativeBuffer Upload<T>(ReadOnlySpan<T> host) where T : unmanaged
    {
        var b = Scratch((long)host.Length * sizeof(T));
        fixed (T* p = host) _backend.Memory.CopyFromHostAsync(p, b.Pointer, (long)host.Length * sizeof(T));
        return b;
    }

    // ---------------------------------------------------------------- memory
    public void Fill(float* y, long n, float value)
    {
        if (n <= 0) return;
        void** a = stackalloc void*[3];
        a[0] = &y;
        a[1] = &n;
        a[2] = &value;
        Launch("elementwise.cu", "nr_fill_f32", GridFor(n), ElementwiseBlock, 0, a);
    }
}
