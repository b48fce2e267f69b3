// Source: ggml's supports_op (ggml-backend.c): ops a backend lacks run on the CPU path.
using NativeReasoner.Kernels.Cpu;
using NativeReasoner.Kernels.Memory;

namespace NativeReasoner.Kernels.Fallback;

/// <summary>
/// <see cref="IGqaDecodeAttention"/> for a backend without the kernel: q and the caches are copied from the
/// backend's memory to host buffers, the CPU backend computes o and lse, and they are copied back. The first
/// call prints one warning (through the sink given at construction). Argument errors are raised before any copy.
/// </summary>
public sealed unsafe class HostGqaDecodeAttention : IGqaDecodeAttention
{
    private readonly string _backend;
    private readonly IDeviceMemory _memory;
    private readonly Action<string> _warn;
    private int _warned;

    /// <param name="backend">The name of the backend that lacks the op (for the warning).</param>
    /// <param name="memory">The backend's memory: the pointers passed in live there.</param>
    /// <param name="warn">Receives the once-only warning.</param>
    public HostGqaDecodeAttention(string backend, IDeviceMemory memory, Action<string> warn)
    {
        _backend = backend;
        _memory = memory;
        _warn = warn;
    }

    public void GqaDecodeAttention(float* q, float* kCache, float* vCache, int* lengths, float* o, float* lse,
        int batch, int Hq, int Hkv, int capacity, int Dk, int Dv, float scale)
    {
        IGqaDecodeAttention.Validate(nameof(GqaDecodeAttention), lengths, batch, Hq, Hkv, capacity, Dk, Dv);
        if (Interlocked.Exchange(ref _warned, 1) == 0)
            _warn(KernelFallback.WarningText(_backend, OptionalOp.GqaDecodeAttention));
        var cpu = CpuKernels.Instance;
        if (_memory.IsHost)
        {
            // Host pointers already: no copies.
            cpu.GqaDecodeAttention(q, kCache, vCache, lengths, o, lse, batch, Hq, Hkv, capacity, Dk, Dv, scale);
            return;
        }
        long qBytes = (long)batch * Hq * Dk * sizeof(float);
        long kBytes = (long)batch * Hkv * capacity * Dk * sizeof(float);
        long vBytes = (long)batch * Hkv * capacity * Dv * sizeof(float);
        long oBytes = (long)batch * Hq * Dv * sizeof(float);
        long lseBytes = (long)batch * Hq * sizeof(float);
        var host = HostMemory.Instance;
        NativeBuffer hq = host.Allocate(Math.Max(1, qBytes)), hk = host.Allocate(Math.Max(1, kBytes)),
            hv = host.Allocate(Math.Max(1, vBytes)), ho = host.Allocate(Math.Max(1, oBytes)),
            hl = host.Allocate(Math.Max(1, lseBytes));
        try
        {
            _memory.CopyToHost((byte*)q, hq.Pointer, qBytes);
            _memory.CopyToHost((byte*)kCache, hk.Pointer, kBytes);
            _memory.CopyToHost((byte*)vCache, hv.Pointer, vBytes);
            cpu.GqaDecodeAttention((float*)hq.Pointer, (float*)hk.Pointer, (float*)hv.Pointer, lengths,
                (float*)ho.Pointer, (float*)hl.Pointer, batch, Hq, Hkv, capacity, Dk, Dv, scale);
            _memory.CopyFromHost(ho.Pointer, (byte*)o, oBytes);
            _memory.CopyFromHost(hl.Pointer, (byte*)lse, lseBytes);
        }
        finally
        {
            hq.Release();
            hk.Release();
            hv.Release();
            ho.Release();
            hl.Release();
        }
    }
}
