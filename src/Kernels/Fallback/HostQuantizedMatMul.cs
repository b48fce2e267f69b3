// Source: ggml's supports_op (ggml-backend.c): ops a backend lacks run on the CPU path.
using NativeReasoner.Kernels.Cpu;
using NativeReasoner.Kernels.Memory;
using NativeReasoner.Kernels.Quant;

namespace NativeReasoner.Kernels.Fallback;

/// <summary>
/// <see cref="IQuantizedMatMul"/> for a backend without the kernel: x and the packed weights are copied to host
/// buffers, the CPU backend computes y, and y is copied back. The first call prints one warning. Copying the
/// weights on every call makes this correct but slow: a device backend should get its own kernel.
/// </summary>
public sealed unsafe class HostQuantizedMatMul : IQuantizedMatMul
{
    private readonly string _backend;
    private readonly IDeviceMemory _memory;
    private readonly Action<string> _warn;
    private int _warned;

    public HostQuantizedMatMul(string backend, IDeviceMemory memory, Action<string> warn)
    {
        _backend = backend;
        _memory = memory;
        _warn = warn;
    }

    public void QuantizedMatMul(QuantFormat format, int M, int N, int K, float* x, byte* w, float* y)
    {
        IQuantizedMatMul.Validate(format, M, N, K);
        if (Interlocked.Exchange(ref _warned, 1) == 0)
            _warn(KernelFallback.WarningText(_backend, OptionalOp.QuantizedMatMul));
        var cpu = CpuKernels.Instance;
        if (_memory.IsHost)
        {
            cpu.QuantizedMatMul(format, M, N, K, x, w, y);
            return;
        }
        long xBytes = (long)M * K * sizeof(float), wBytes = N * format.RowBytes(K),
            yBytes = (long)M * N * sizeof(float);
        var host = HostMemory.Instance;
        NativeBuffer hx = host.Allocate(Math.Max(1, xBytes)), hw = host.Allocate(Math.Max(1, wBytes)),
            hy = host.Allocate(Math.Max(1, yBytes));
        try
        {
            _memory.CopyToHost((byte*)x, hx.Pointer, xBytes);
            _memory.CopyToHost(w, hw.Pointer, wBytes);
            cpu.QuantizedMatMul(format, M, N, K, (float*)hx.Pointer, hw.Pointer, (float*)hy.Pointer);
            _memory.CopyFromHost(hy.Pointer, (byte*)y, yBytes);
        }
        finally
        {
            hx.Release();
            hw.Release();
            hy.Release();
        }
    }
}
