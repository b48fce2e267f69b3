// Source: ggml's mul_mat with quantised weights (ggml-cpu.c): activations quantised once per call, weight rows
//         split over the threads; for many rows, dequantised panels into the SGEMM (as ggml hands large
//         products of dequantised weights to a BLAS).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using NativeReasoner.Kernels.Cpu.Gemm;
using NativeReasoner.Kernels.Cpu.Quant;
using NativeReasoner.Kernels.Quant;

namespace NativeReasoner.Kernels.Cpu;

/// <summary>How <see cref="CpuKernels.QuantizedMatMul(QuantIsa, QuantFormat, int, int, int, float*, byte*, float*,
/// QuantizedPath)"/> multiplies: by the row counts (Auto), or one path forced (tests and profiles).</summary>
internal enum QuantizedPath { Auto, RowDots, Tiles, Panels }

public sealed unsafe partial class CpuKernels : IQuantizedMatMul
{
    /// <summary>
    /// From this many rows of x on, panels of bf16 and Q6_K weights are dequantised into the packed SGEMM; the
    /// grouped expert kernel also hands its groups of this many rows on to <see cref="QuantizedMatMul(QuantFormat,
    /// int, int, int, float*, byte*, float*)"/>. Measured at batch 16 on a 1024-wide model, the panels ran about 3×
    /// the per-row integer dots relative to the bf16 baseline of the same run.
    /// </summary>
    internal const int PanelFromRows = 16;

    /// <summary>
    /// From this many rows of x on, Q8_0 / Q4_0 / Q4_K also go to the panels; below, they take the integer tiles
    /// of <see cref="QuantTiles"/>. Measured per thread on Qwen2.5-0.5B's projections (perf profile-quant-paths;
    /// 896×896, 4864×896, 896×4864): at 16 rows the tiles take 0.26–0.37 of the panels' time, at 64 rows
    /// 0.77–0.86, at 96 rows 0.9–1.3, at 128 rows 1.0–1.5. From 64 rows on the two are within 25 % and the
    /// panels keep the activations in fp32, so prefill stays on them.
    /// </summary>
    internal const int IntegerPanelFromRows = 64;

    /// <summary>
    /// From this many rows of x on, Q8_0 / Q4_0 / Q4_K take the integer tiles; below, the per-row dots. At one row
    /// the per-row dots win end to end: Qwen2.5-0.5B Q8_0 decodes 45.6 tokens/s with them against 29.5 with
    /// one-row tiles (perf/compare-llamacpp.sh, quiet machine), although a single thread timed alone favoured the
    /// tiles by 10–20 % (perf profile-quant-paths). Q4_K's per-row dot unpacks a super-block's scales once into
    /// vectors and beats the tile up to a few rows (896×4864 per thread: 118 against 317 µs at 1 row, 490 against
    /// 616 at 4, 1011 against 964 at 8).
    /// </summary>
    internal static int TileFromRows(QuantFormat format) => format == QuantFormat.Q4_K ? 8 : 2;

    /// <summary>
    /// y[M, N] = x[M, K] · Wᵀ with W packed (see <see cref="IQuantizedMatMul"/>). Q8_0 / Q4_0 / Q4_K with fewer
    /// than <see cref="IntegerPanelFromRows"/> rows (decode at any batch, short prefills) take integer tiles with x
    /// quantised per block of 32 (<see cref="QuantTiles"/>, <see cref="Q8Activations"/>; Q4_K below
    /// <see cref="TileFromRows"/> rows its per-row dots); bf16 and Q6_K with fewer
    /// than <see cref="PanelFromRows"/> read the packed rows directly (bf16 widened in registers, Q6_K per row).
    /// Beyond, panels of weight rows are dequantised into scratch and the SGEMM runs on them; the whole weight is
    /// never widened at once.
    /// </summary>
    public void QuantizedMatMul(QuantFormat format, int M, int N, int K, float* x, byte* w, float* y) =>
        QuantizedMatMul(QuantIsas.Best, format, M, N, K, x, w, y);

    internal void QuantizedMatMul(QuantIsa isa, QuantFormat format, int M, int N, int K, float* x, byte* w, float* y,
        QuantizedPath path = QuantizedPath.Auto)
    {
        IQuantizedMatMul.Validate(format, M, N, K);
        if (!QuantIsas.Supported(isa)) throw new PlatformNotSupportedException($"this CPU cannot run {isa}");
        if (M == 0 || N == 0) return;
        if (K == 0)
        {
            Fill(y, (long)M * N, 0f);
            return;
        }
        if (path == QuantizedPath.Auto)
            path = !QuantTiles.Handles(format) ? (M >= PanelFromRows ? QuantizedPath.Panels : QuantizedPath.RowDots)
                : M >= IntegerPanelFromRows ? QuantizedPath.Panels
                : M >= TileFromRows(format) ? QuantizedPath.Tiles
                : QuantizedPath.RowDots;
        if (path == QuantizedPath.Tiles && !QuantTiles.Handles(format))
            throw new ArgumentException($"QuantizedMatMul: no integer tiles for {format.Name()}");
        if (path == QuantizedPath.Panels)
        {
            PanelGemm(format, M, N, K, x, w, y);
            return;
        }
        var job = new RowsJob
        {
            Isa = isa, Format = format, M = M, N = N, K = K, X = x, W = w, Y = y, RowBytes = format.RowBytes(K),
            Tiles = path == QuantizedPath.Tiles,
        };
        float* scratch = null;
        try
        {
            if (HasIntegerDot(format))
            {
                scratch = GemmScratch.Rent(Q8Activations.ScratchFloats(M, K));
                job.A = Q8Activations.Quantize(x, M, K, scratch);
            }
            // At least ~64 KiB of weights per chunk, so a thread's share is worth waking it for.
            long minRows = Math.Max(1, 65536 / job.RowBytes);
            if (job.Tiles)
                CpuParallel.For((N + QuantTiles.WeightRows - 1) / QuantTiles.WeightRows,
                    Math.Max(1, minRows / QuantTiles.WeightRows), &TilesBody, &job);
            else
                CpuParallel.For(N, minRows, &RowsBody, &job);
        }
        finally
        {
            if (scratch != null) GemmScratch.Return(scratch);
        }
    }

    private struct RowsJob
    {
        public QuantIsa Isa;
        public QuantFormat Format;
        public int M, N, K;
        public float* X, Y;
        public byte* W;
        public long RowBytes;
        public Q8Activations A;
        public bool Tiles;
    }

    /// <summary>Tiles [start, end) of <see cref="QuantTiles.WeightRows"/> weight rows each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TilesBody(void* state, long start, long end)
    {
        ref RowsJob job = ref *(RowsJob*)state;
        long n0 = start * QuantTiles.WeightRows, n1 = Math.Min(job.N, end * QuantTiles.WeightRows);
        long floats = QuantTiles.ScratchFloats(job.Format, job.K);
        float* scratch = floats > 0 ? GemmScratch.Rent(floats) : null;
        try
        {
            QuantTiles.Run(job.Isa, job.Format, job.W, job.RowBytes, job.A, job.M, n0, n1, job.Y, job.N, scratch);
        }
        finally
        {
            if (scratch != null) GemmScratch.Return(scratch);
        }
    }

    /// <summary>Q8_0, Q4_0 and Q4_K have integer dot kernels; bf16 is read as is; Q6_K (decode-only) is widened per
    /// row.</summary>
    private static bool HasIntegerDot(QuantFormat format) =>
        format is QuantFormat.Q8_0 or QuantFormat.Q4_0 or QuantFormat.Q4_K;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RowsBody(void* state, long start, long end)
    {
        ref RowsJob job = ref *(RowsJob*)state;
        if (job.Format == QuantFormat.BF16)
        {
            for (long n = start; n < end; n++)
                for (int m = 0; m < job.M; m++)
                    job.Y[(long)m * job.N + n] =
                        Bf16Dot(job.Isa, (ushort*)(job.W + n * job.RowBytes), job.X + (long)m * job.K, job.K);
        }
        else if (HasIntegerDot(job.Format))
        {
            for (long n = start; n < end; n++)
                for (int m = 0; m < job.M; m++)
                    job.Y[(long)m * job.N + n] = QuantDots.Dot(job.Isa, job.Format, job.W + n * job.RowBytes, job.A, m);
        }
        else
        {
            // Q6_K: each row dequantised once into this chunk's scratch, then fp32 dots with every x row.
            float* row = GemmScratch.Rent(job.K);
            try
            {
                var span = new Span<float>(row, job.K);
                for (long n = start; n < end; n++)
                {
                    BlockQuantizer.DequantizeRow(job.Format,
                        new ReadOnlySpan<byte>(job.W + n * job.RowBytes, (int)job.RowBytes), span);
                    for (int m = 0; m < job.M; m++)
                        job.Y[(long)m * job.N + n] = System.Numerics.Tensors.TensorPrimitives.Dot(
                            new ReadOnlySpan<float>(job.X + (long)m * job.K, job.K), span);
                }
            }
            finally
            {
                GemmScratch.Return(row);
            }
        }
    }

    /// <summary>Σ x[k] · bf16(w[k]): each bf16 is the top half of its float32, widened by a 16-bit shift.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Bf16Dot(QuantIsa isa, ushort* w, float* x, int k)
    {
        int p = 0;
        float total = 0f;
        if (isa == QuantIsa.Avx512 && Avx512F.IsSupported)
        {
            Vector512<float> acc0 = default, acc1 = default;
            for (; p + 32 <= k; p += 32)
            {
                var w0 = Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512UInt32(Vector256.Load(w + p)), 16);
                var w1 = Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512UInt32(Vector256.Load(w + p + 16)), 16);
                acc0 = Avx512F.FusedMultiplyAdd(w0.AsSingle(), Vector512.Load(x + p), acc0);
                acc1 = Avx512F.FusedMultiplyAdd(w1.AsSingle(), Vector512.Load(x + p + 16), acc1);
            }
            total = Vector512.Sum(acc0 + acc1);
        }
        else if (isa != QuantIsa.Scalar && Avx2.IsSupported && Fma.IsSupported)
        {
            Vector256<float> acc0 = default, acc1 = default;
            for (; p + 16 <= k; p += 16)
            {
                var w0 = Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32(Vector128.Load(w + p)), 16);
                var w1 = Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32(Vector128.Load(w + p + 8)), 16);
                acc0 = Fma.MultiplyAdd(w0.AsSingle(), Vector256.Load(x + p), acc0);
                acc1 = Fma.MultiplyAdd(w1.AsSingle(), Vector256.Load(x + p + 8), acc1);
            }
            total = Vector256.Sum(acc0 + acc1);
        }
        for (; p < k; p++) total += BitConverter.UInt32BitsToSingle((uint)w[p] << 16) * x[p];
        return total;
    }

    /// <summary>
    /// Prefill: y = x · Wᵀ by panels of weight rows, each thread taking whole panels: it dequantises its panel
    /// into its own scratch (a few hundred KiB, so the panel stays in the core's L2 while the SGEMM packs it)
    /// and multiplies x by it with the single-threaded SGEMM (nested in the parallel body, so it runs inline):
    /// y[:, n0 : n0 + rows] = x · panelᵀ. One fork-join per product, and no panel makes a round trip through
    /// memory; the cost is x packed once per panel (1/rows of the product's work).
    /// </summary>
    private void PanelGemm(QuantFormat format, int M, int N, int K, float* x, byte* w, float* y)
    {
        // ~512 KiB of fp32 per panel, in whole 64-row steps (the SGEMM's skinny path is for ≤ 4 rows).
        int panelRows = Math.Clamp((1 << 17) / K / 64 * 64, 64, 512);
        var job = new PanelJob
        {
            Format = format, M = M, N = N, K = K, RowBytes = format.RowBytes(K), W = w, X = x, Y = y,
            PanelRows = panelRows,
        };
        long panels = (N + panelRows - 1) / panelRows;
        CpuParallel.For(panels, 1, &PanelBody, &job);
    }

    private struct PanelJob
    {
        public QuantFormat Format;
        public int M, N, K, PanelRows;
        public long RowBytes;
        public byte* W;
        public float* X, Y;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PanelBody(void* state, long start, long end)
    {
        ref PanelJob job = ref *(PanelJob*)state;
        float* panel = GemmScratch.Rent((long)job.PanelRows * job.K);
        try
        {
            for (long p = start; p < end; p++)
            {
                int n0 = (int)(p * job.PanelRows), rows = Math.Min(job.PanelRows, job.N - n0);
                for (int r = 0; r < rows; r++)
                    BlockQuantizer.DequantizeRow(job.Format,
                        new ReadOnlySpan<byte>(job.W + (n0 + r) * job.RowBytes, (int)job.RowBytes),
                        new Span<float>(panel + (long)r * job.K, job.K));
                Sgemm.Run(GemmConfig.Current, 1, false, true, job.M, rows, job.K, 1f, job.X, job.K, 0, panel, job.K,
                    0, 0f, job.Y + n0, job.N, 0);
            }
        }
        finally
        {
            GemmScratch.Return(panel);
        }
    }
}
