using BenchmarkDotNet.Attributes;
using NativeReasoner.Kernels;
using NativeReasoner.Kernels.Cpu;
using NativeReasoner.Kernels.Memory;

namespace NativeReasoner.Perf;

/// <summary>
/// First CPU kernel benchmarks (GEMM, softmax, RMSNorm, causal attention) straight on the kernel layer, so
/// tensor bookkeeping does not blur the numbers. The CPU-performance issue extends this suite.
/// </summary>
[MemoryDiagnoser]
public unsafe class GemmBenchmarks
{
    [Params(256, 512, 1024)] public int Size;

    private NativeBuffer _a = null!, _b = null!, _c = null!;

    [GlobalSetup]
    public void Setup()
    {
        long bytes = (long)Size * Size * sizeof(float);
        _a = BufferPool.Shared.Rent(bytes);
        _b = BufferPool.Shared.Rent(bytes);
        _c = BufferPool.Shared.Rent(bytes);
        var rng = new Random(1);
        var a = new Span<float>(_a.Pointer, Size * Size);
        var b = new Span<float>(_b.Pointer, Size * Size);
        for (int i = 0; i < a.Length; i++) { a[i] = (float)rng.NextDouble() - 0.5f; b[i] = (float)rng.NextDouble() - 0.5f; }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _a.Release();
        _b.Release();
        _c.Release();
    }

    /// <summary>C = A·B, fp32, row-major.</summary>
    [Benchmark]
    public void SgemmNN() => CpuKernels.Instance.Gemm(1, false, false, Size, Size, Size, 1f,
        (float*)_a.Pointer, Size, 0, (float*)_b.Pointer, Size, 0, 0f, (float*)_c.Pointer, Size, 0);

    /// <summary>C = A·Bᵀ (the layout of a Linear layer's forward).</summary>
    [Benchmark]
    public void SgemmNT() => CpuKernels.Instance.Gemm(1, false, true, Size, Size, Size, 1f,
        (float*)_a.Pointer, Size, 0, (float*)_b.Pointer, Size, 0, 0f, (float*)_c.Pointer, Size, 0);
}

[MemoryDiagnoser]
public unsafe class RowOpBenchmarks
{
    [Params(4096)] public int Rows;
    [Params(1024)] public int Cols;

    private NativeBuffer _x = null!, _y = null!, _w = null!, _r = null!;

    [GlobalSetup]
    public void Setup()
    {
        long n = (long)Rows * Cols;
        _x = BufferPool.Shared.Rent(n * 4);
        _y = BufferPool.Shared.Rent(n * 4);
        _w = BufferPool.Shared.Rent(Cols * 4L);
        _r = BufferPool.Shared.Rent(Rows * 4L);
        var rng = new Random(2);
        var x = new Span<float>(_x.Pointer, (int)n);
        for (int i = 0; i < x.Length; i++) x[i] = (float)rng.NextDouble() * 8 - 4;
        new Span<float>(_w.Pointer, Cols).Fill(1f);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _x.Release();
        _y.Release();
        _w.Release();
        _r.Release();
    }

    [Benchmark]
    public void Softmax() => CpuKernels.Instance.Softmax((float*)_x.Pointer, (float*)_y.Pointer, Rows, Cols, false);

    [Benchmark]
    public void RmsNorm() => CpuKernels.Instance.RmsNorm((float*)_x.Pointer, (float*)_w.Pointer, (float*)_y.Pointer,
        (float*)_r.Pointer, Rows, Cols, 1e-6f);
}

[MemoryDiagnoser]
public unsafe class AttentionBenchmarks
{
    // PyTorch anchor in the CPU-performance issue: B=1, H=8, T=512, D=64, causal.
    private const int BH = 8, T = 512, D = 64;
    private NativeBuffer _q = null!, _k = null!, _v = null!, _o = null!, _lse = null!;

    [GlobalSetup]
    public void Setup()
    {
        long n = (long)BH * T * D;
        _q = BufferPool.Shared.Rent(n * 4);
        _k = BufferPool.Shared.Rent(n * 4);
        _v = BufferPool.Shared.Rent(n * 4);
        _o = BufferPool.Shared.Rent(n * 4);
        _lse = BufferPool.Shared.Rent(BH * T * 4L);
        var rng = new Random(3);
        foreach (var b in new[] { _q, _k, _v })
        {
            var s = new Span<float>(b.Pointer, (int)n);
            for (int i = 0; i < s.Length; i++) s[i] = (float)rng.NextDouble() - 0.5f;
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var b in new[] { _q, _k, _v, _o, _lse }) b.Release();
    }

    [Benchmark]
    public void CausalForward() => CpuKernels.Instance.AttentionForward((float*)_q.Pointer, (float*)_k.Pointer,
        (float*)_v.Pointer, (float*)_o.Pointer, (float*)_lse.Pointer, BH, T, T, D, D, 1f / MathF.Sqrt(D), true);
}
