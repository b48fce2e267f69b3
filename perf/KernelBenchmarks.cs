using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using NativeReasoner.Kernels.Cpu;

namespace NativeReasoner.Perf;

/// <summary>
/// A short job for a shared 2-core machine: in-process (no per-run project build), 3 warm-ups, 7 measured
/// iterations of ≈ 250 ms each. Medians are reported; absolute numbers move with the background load, so
/// compare rows of one run (perf/compare-cpu.sh measures the PyTorch anchors side by side).
/// </summary>
public sealed class ShortConfig : ManualConfig
{
    public ShortConfig()
    {
        AddJob(Job.Default
            .WithToolchain(InProcessEmitToolchain.Instance)
            .WithLaunchCount(1).WithWarmupCount(3).WithIterationCount(7)
            .WithIterationTime(Perfolizer.Horology.TimeInterval.FromMilliseconds(250))
            .WithId("short"));
        AddColumn(BenchmarkDotNet.Columns.StatisticColumn.Median);
    }
}

/// <summary>Native 64-byte aligned float buffers filled with a fixed-seed uniform in [−scale, scale).</summary>
internal static unsafe class Buffers
{
    public static float* Random(long n, int seed, float scale = 1f)
    {
        var p = (float*)NativeMemory.AlignedAlloc((nuint)(Math.Max(n, 1) * sizeof(float)), 64);
        var rng = new Random(seed);
        for (long i = 0; i < n; i++) p[i] = scale * (2f * (float)rng.NextDouble() - 1f);
        return p;
    }

    public static void Free(params nint[] ps)
    {
        foreach (var p in ps) NativeMemory.AlignedFree((void*)p);
    }
}

/// <summary>Square SGEMM, C = A·B (NN) and C = A·Bᵀ (NT, a Linear layer's forward). GFLOP/s = 2·S³ / time.</summary>
[Config(typeof(ShortConfig))]
public unsafe class GemmSquareBenchmarks
{
    [Params(256, 512, 1024, 2048)] public int Size;

    private float* _a, _b, _c;

    [GlobalSetup]
    public void Setup()
    {
        long n = (long)Size * Size;
        _a = Buffers.Random(n, 1);
        _b = Buffers.Random(n, 2);
        _c = Buffers.Random(n, 3);
    }

    [GlobalCleanup]
    public void Cleanup() => Buffers.Free((nint)_a, (nint)_b, (nint)_c);

    [Benchmark]
    public void SgemmNN() => CpuKernels.Instance.Gemm(1, false, false, Size, Size, Size, 1f, _a, Size, 0, _b, Size, 0, 0f, _c, Size, 0);

    [Benchmark]
    public void SgemmNT() => CpuKernels.Instance.Gemm(1, false, true, Size, Size, Size, 1f, _a, Size, 0, _b, Size, 0, 0f, _c, Size, 0);
}

/// <summary>
/// The bench-tiny model's shapes (16 × 128 = 2048 tokens, hidden 128, MLP 384, q/kv LoRA 64): the forward
/// (x·Wᵀ, NT), the weight gradient (dyᵀ·x, TN) and the input gradient (dy·W, NN) of a Linear layer.
/// </summary>
[Config(typeof(ShortConfig))]
public unsafe class GemmModelBenchmarks
{
    /// <summary>"tokens×out×in".</summary>
    [Params("2048x128x128", "2048x384x128", "2048x128x384", "2048x512x128", "2048x64x128")]
    public string Shape = "";

    private int _m, _n, _k;
    private float* _x, _w, _y, _dw;

    [GlobalSetup]
    public void Setup()
    {
        var p = Shape.Split('x').Select(int.Parse).ToArray();
        (_m, _n, _k) = (p[0], p[1], p[2]);
        _x = Buffers.Random((long)_m * _k, 1);
        _w = Buffers.Random((long)_n * _k, 2);
        _y = Buffers.Random((long)_m * _n, 3);
        _dw = Buffers.Random((long)_n * _k, 4);
    }

    [GlobalCleanup]
    public void Cleanup() => Buffers.Free((nint)_x, (nint)_w, (nint)_y, (nint)_dw);

    /// <summary>y[m, n] = x[m, k] · W[n, k]ᵀ</summary>
    [Benchmark]
    public void Forward_NT() => CpuKernels.Instance.Gemm(1, false, true, _m, _n, _k, 1f, _x, _k, 0, _w, _k, 0, 0f, _y, _n, 0);

    /// <summary>dW[n, k] = dy[m, n]ᵀ · x[m, k]</summary>
    [Benchmark]
    public void WeightGrad_TN() => CpuKernels.Instance.Gemm(1, true, false, _n, _k, _m, 1f, _y, _n, 0, _x, _k, 0, 0f, _dw, _k, 0);

    /// <summary>dx[m, k] = dy[m, n] · W[n, k]</summary>
    [Benchmark]
    public void InputGrad_NN() => CpuKernels.Instance.Gemm(1, false, false, _m, _k, _n, 1f, _y, _n, 0, _w, _k, 0, 0f, _x, _k, 0);
}

/// <summary>Causal fused attention at the PyTorch anchor's shape (B·H = 8, T = 512, D = 64) and an MLA-like one.</summary>
[Config(typeof(ShortConfig))]
public unsafe class AttentionBenchmarks
{
    /// <summary>"BH×T×Dk×Dv".</summary>
    [Params("8x512x64x64", "64x128x48x32")]
    public string Shape = "";

    private int _bh, _t, _dk, _dv;
    private float* _q, _k, _v, _o, _lse, _do, _dq, _dkk, _dvv;

    [GlobalSetup]
    public void Setup()
    {
        var p = Shape.Split('x').Select(int.Parse).ToArray();
        (_bh, _t, _dk, _dv) = (p[0], p[1], p[2], p[3]);
        long qn = (long)_bh * _t * _dk, vn = (long)_bh * _t * _dv;
        _q = Buffers.Random(qn, 1); _k = Buffers.Random(qn, 2); _v = Buffers.Random(vn, 3);
        _o = Buffers.Random(vn, 4); _lse = Buffers.Random((long)_bh * _t, 5); _do = Buffers.Random(vn, 6);
        _dq = Buffers.Random(qn, 7); _dkk = Buffers.Random(qn, 8); _dvv = Buffers.Random(vn, 9);
        Forward(); // o and lse of these inputs, for the backward
    }

    [GlobalCleanup]
    public void Cleanup() => Buffers.Free((nint)_q, (nint)_k, (nint)_v, (nint)_o, (nint)_lse, (nint)_do, (nint)_dq, (nint)_dkk, (nint)_dvv);

    [Benchmark]
    public void Forward() => CpuKernels.Instance.AttentionForward(_q, _k, _v, _o, _lse, _bh, _t, _t, _dk, _dv,
        1f / MathF.Sqrt(_dk), true, kvGroup: 1);

    [Benchmark]
    public void Backward() => CpuKernels.Instance.AttentionBackward(_q, _k, _v, _o, _lse, _do, _dq, _dkk, _dvv,
        _bh, _t, _t, _dk, _dv, 1f / MathF.Sqrt(_dk), true, kvGroup: 1);
}

/// <summary>Row-wise ops at the model's activation sizes: 2048 tokens × hidden 128, and a wide 4096 × 1024.</summary>
[Config(typeof(ShortConfig))]
public unsafe class RowOpBenchmarks
{
    [Params("2048x128", "4096x1024")] public string Shape = "";

    private int _rows, _cols;
    private float* _x, _y, _w, _r, _dx, _dw;

    [GlobalSetup]
    public void Setup()
    {
        var p = Shape.Split('x').Select(int.Parse).ToArray();
        (_rows, _cols) = (p[0], p[1]);
        long n = (long)_rows * _cols;
        _x = Buffers.Random(n, 1, 4f); _y = Buffers.Random(n, 2); _dx = Buffers.Random(n, 3);
        _w = Buffers.Random(_cols, 4); _r = Buffers.Random(_rows, 5); _dw = Buffers.Random(_cols, 6);
    }

    [GlobalCleanup]
    public void Cleanup() => Buffers.Free((nint)_x, (nint)_y, (nint)_w, (nint)_r, (nint)_dx, (nint)_dw);

    [Benchmark]
    public void Softmax() => CpuKernels.Instance.Softmax(_x, _y, _rows, _cols, false);

    [Benchmark]
    public void SoftmaxBackward() => CpuKernels.Instance.SoftmaxBackward(_y, _x, _dx, _rows, _cols, false);

    [Benchmark]
    public void RmsNorm() => CpuKernels.Instance.RmsNorm(_x, _w, _y, _r, _rows, _cols, 1e-6f);

    [Benchmark]
    public void RmsNormBackward() => CpuKernels.Instance.RmsNormBackward(_x, _w, _r, _y, _dx, _dw, _rows, _cols);
}

/// <summary>
/// The fused kernels: SwiGLU at the MLP's size (2048 tokens × 384) and log-softmax + gather at GRPO's
/// (rows × vocab), each against the unfused sequence it replaces, so the table shows what fusing saves.
/// </summary>
[Config(typeof(ShortConfig))]
public unsafe class FusedBenchmarks
{
    private const int Tokens = 2048, Inter = 384;
    [Params("2048x128", "512x32000")] public string Logits = "";

    private int _rows, _v;
    private float* _g, _u, _y, _dy, _dg, _du, _logits, _logp, _lse, _dlogits, _lsm;
    private long* _ids;

    [GlobalSetup]
    public void Setup()
    {
        long n = (long)Tokens * Inter;
        _g = Buffers.Random(n, 1, 4f); _u = Buffers.Random(n, 2); _y = Buffers.Random(n, 3);
        _dy = Buffers.Random(n, 4); _dg = Buffers.Random(n, 5); _du = Buffers.Random(n, 6);
        var p = Logits.Split('x').Select(int.Parse).ToArray();
        (_rows, _v) = (p[0], p[1]);
        long ln = (long)_rows * _v;
        _logits = Buffers.Random(ln, 7, 5f); _dlogits = Buffers.Random(ln, 8); _lsm = Buffers.Random(ln, 9);
        _logp = Buffers.Random(_rows, 10); _lse = Buffers.Random(_rows, 11);
        _ids = (long*)NativeMemory.AlignedAlloc((nuint)(_rows * sizeof(long)), 64);
        var rng = new Random(12);
        for (int r = 0; r < _rows; r++) _ids[r] = rng.Next(_v);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        Buffers.Free((nint)_g, (nint)_u, (nint)_y, (nint)_dy, (nint)_dg, (nint)_du, (nint)_logits, (nint)_logp,
            (nint)_lse, (nint)_dlogits, (nint)_lsm);
        NativeMemory.AlignedFree(_ids);
    }

    [Benchmark]
    public void SiluMul() => CpuKernels.Instance.SiluMul(_g, _u, _y, (long)Tokens * Inter);

    /// <summary>What SiluMul replaces: silu(gate) into a temporary, then a multiply.</summary>
    [Benchmark]
    public void SiluThenMul_Unfused()
    {
        long n = (long)Tokens * Inter;
        Span<long> st = [1];
        CpuKernels.Instance.Unary(Kernels.UnaryOp.Silu, _g, _dg, n, 0f);
        CpuKernels.Instance.Binary(Kernels.BinaryOp.Mul, _dg, st, _u, st, _y, [(int)n]);
    }

    [Benchmark]
    public void SiluMulBackward() => CpuKernels.Instance.SiluMulBackward(_g, _u, _dy, _dg, _du, (long)Tokens * Inter);

    [Benchmark]
    public void LogSoftmaxGather() => CpuKernels.Instance.LogSoftmaxGather(_logits, _ids, _logp, _lse, _rows, _v, 1f / 0.7f);

    /// <summary>What LogSoftmaxGather replaces (at T = 1): the full [rows, V] log-softmax, then a gather.</summary>
    [Benchmark]
    public void LogSoftmaxThenGather_Unfused()
    {
        CpuKernels.Instance.Softmax(_logits, _lsm, _rows, _v, true);
        CpuKernels.Instance.Gather(_lsm, _ids, _logp, _rows, _v, 1, 1); // [rows, V] → [rows, 1]
    }

    [Benchmark]
    public void LogSoftmaxGatherBackward() =>
        CpuKernels.Instance.LogSoftmaxGatherBackward(_logits, _ids, _lse, _logp, _dlogits, _rows, _v, 1f / 0.7f);
}
