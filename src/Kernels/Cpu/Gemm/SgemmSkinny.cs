// Source: Goto & van de Geijn, "Anatomy of high-performance matrix multiplication" (TOMS 2008) and BLIS's micro-kernel
//         design; the semantics of BLAS sgemm.
using System.Runtime.CompilerServices;
using System.Numerics.Tensors;

namespace NativeReasoner.Kernels.Cpu.Gemm;

/// <summary>
/// GEMM with very few rows (M ≤ <see cref="MaxSkinny"/>: decode steps, x·W) or very few columns
/// (N ≤ <see cref="MaxSkinny"/>: scalar heads). These are memory-bound matrix-vector products: the packed
/// path would copy the big operand once more and waste most of an MR × NR register tile, so they stream the
/// big operand exactly once with SIMD dots / AXPYs instead.
/// </summary>
internal static unsafe class SgemmSkinny
{
    public const int MaxSkinny = 4;

    /// <summary>Whether this path takes an M × N × K product.</summary>
    public static bool Applies(int M, int N, int K) =>
        K > 0 && (M <= MaxSkinny || N <= MaxSkinny);
    private const int Chunk = 512; // columns (skinny M) or rows (skinny N) per work item

    internal struct Job
    {
        public bool TransA, TransB, SkinnyM;
        public int M, N, K, Chunks;
        public float Alpha, Beta;
        public float* A, B, C;
        public long Lda, Ldb, Ldc, StrideA, StrideB, StrideC;
    }

    public static void Run(bool parallel, int batch, bool transA, bool transB, int M, int N, int K, float alpha,
        float* A, long lda, long strideA, float* B, long ldb, long strideB, float beta, float* C, long ldc, long strideC)
    {
        bool skinnyM = M <= MaxSkinny;
        var job = new Job
        {
            TransA = transA, TransB = transB, SkinnyM = skinnyM, M = M, N = N, K = K, Alpha = alpha, Beta = beta,
            A = A, B = B, C = C, Lda = lda, Ldb = ldb, Ldc = ldc, StrideA = strideA, StrideB = strideB, StrideC = strideC,
            Chunks = ((skinnyM ? N : M) + Chunk - 1) / Chunk,
        };
        long items = (long)batch * job.Chunks;
        if (parallel && items > 1) CpuParallel.For(items, 1, &Items, &job);
        else Items(&job, 0, items);
    }

    private static void Items(void* state, long start, long end)
    {
        ref Job j = ref *(Job*)state;
        int K = j.K;
        // Scratch: the ≤ 4 thin vectors made contiguous [4][K], plus accumulators [4][Chunk].
        float* scratch = GemmScratch.Rent((long)MaxSkinny * K + MaxSkinny * Chunk);
        float* thin = scratch, acc = scratch + (long)MaxSkinny * K;
        try
        {
            for (long item = start; item < end; item++)
            {
                long b = item / j.Chunks;
                int c0 = (int)(item % j.Chunks) * Chunk;
                float* A = j.A + b * j.StrideA, B = j.B + b * j.StrideB, C = j.C + b * j.StrideC;
                if (j.SkinnyM) RowsItem(ref j, A, B, C, c0, Math.Min(j.N, c0 + Chunk), thin, acc);
                else ColsItem(ref j, A, B, C, c0, Math.Min(j.M, c0 + Chunk), thin, acc);
            }
        }
        finally
        {
            GemmScratch.Return(scratch);
        }
    }

    /// <summary>M ≤ 4: output columns [n0, n1) of every row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RowsItem(ref Job j, float* A, float* B, float* C, int n0, int n1, float* aRows, float* acc)
    {
        int M = j.M, K = j.K, n = n1 - n0;
        // aRows[i][p] = op(A)[i, p]
        for (int i = 0; i < M; i++)
            for (int p = 0; p < K; p++)
                aRows[(long)i * K + p] = j.TransA ? A[p * j.Lda + i] : A[i * j.Lda + p];
        if (ThinKernels.Supported)
        {
            // Straight from registers into C: op(B) columns contiguous (a dot each) or op(B) rows (AXPYs).
            if (j.TransB) ThinKernels.DotsNT(M, n, K, aRows, K, B + n0 * j.Ldb, j.Ldb, C + n0, j.Ldc, j.Alpha, j.Beta);
            else ThinKernels.Axpy(M, n, K, aRows, K, 1, B + n0, j.Ldb, C + n0, j.Ldc, j.Alpha, j.Beta);
            return;
        }
        if (j.TransB)
        {
            // op(B)[:, col] is row col of B: one contiguous dot per output.
            for (int i = 0; i < M; i++)
            {
                var ai = new ReadOnlySpan<float>(aRows + (long)i * K, K);
                for (int col = n0; col < n1; col++)
                    acc[i * Chunk + col - n0] = TensorPrimitives.Dot(ai, new ReadOnlySpan<float>(B + col * j.Ldb, K));
            }
        }
        else
        {
            // acc_i += op(A)[i,p] · B[p, n0..n1): stream each row chunk of B once for all ≤ 4 rows.
            for (int i = 0; i < M; i++) new Span<float>(acc + i * Chunk, n).Clear();
            for (int p = 0; p < K; p++)
            {
                var bp = new ReadOnlySpan<float>(B + p * j.Ldb + n0, n);
                for (int i = 0; i < M; i++)
                {
                    var ai = new Span<float>(acc + i * Chunk, n);
                    TensorPrimitives.MultiplyAdd(bp, aRows[(long)i * K + p], ai, ai);
                }
            }
        }
        for (int i = 0; i < M; i++)
            Store(acc + i * Chunk, 1, C + i * j.Ldc + n0, 1, n, j.Alpha, j.Beta);
    }

    /// <summary>N ≤ 4: output rows [m0, m1) of every column.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ColsItem(ref Job j, float* A, float* B, float* C, int m0, int m1, float* bCols, float* acc)
    {
        int N = j.N, K = j.K, m = m1 - m0;
        // bCols[col][p] = op(B)[p, col]
        for (int col = 0; col < N; col++)
            for (int p = 0; p < K; p++)
                bCols[(long)col * K + p] = j.TransB ? B[col * j.Ldb + p] : B[p * j.Ldb + col];
        if (!j.TransA && ThinKernels.Supported)
        {
            // C[i, col] = A row i · bCols[col], written straight from registers.
            ThinKernels.DotsNT(m, N, K, A + m0 * j.Lda, j.Lda, bCols, K, C + m0 * j.Ldc, j.Ldc, j.Alpha, j.Beta);
            return;
        }
        if (!j.TransA)
        {
            // Row i of A is contiguous: one dot per output.
            for (int i = m0; i < m1; i++)
            {
                var ai = new ReadOnlySpan<float>(A + i * j.Lda, K);
                for (int col = 0; col < N; col++)
                    acc[col * Chunk + i - m0] = TensorPrimitives.Dot(ai, new ReadOnlySpan<float>(bCols + (long)col * K, K));
            }
        }
        else
        {
            // A stored K×M: acc_col += op(B)[p, col] · A[p, m0..m1), streaming each row chunk of A once.
            for (int col = 0; col < N; col++) new Span<float>(acc + col * Chunk, m).Clear();
            for (int p = 0; p < K; p++)
            {
                var ap = new ReadOnlySpan<float>(A + p * j.Lda + m0, m);
                for (int col = 0; col < N; col++)
                {
                    var ac = new Span<float>(acc + col * Chunk, m);
                    TensorPrimitives.MultiplyAdd(ap, bCols[(long)col * K + p], ac, ac);
                }
            }
        }
        for (int col = 0; col < N; col++)
            Store(acc + col * Chunk, 1, C + m0 * j.Ldc + col, j.Ldc, m, j.Alpha, j.Beta);
    }

    /// <summary>c[e·cs] = alpha · acc[e] + beta · c[e·cs] for e &lt; n; beta = 0 never reads c.</summary>
    private static void Store(float* acc, long accStride, float* c, long cs, int n, float alpha, float beta)
    {
        if (cs == 1 && beta == 0f)
        {
            TensorPrimitives.Multiply(new ReadOnlySpan<float>(acc, n), alpha, new Span<float>(c, n));
            return;
        }
        for (int e = 0; e < n; e++)
        {
            float* ce = c + e * cs;
            float v = alpha * acc[e * accStride];
            *ce = beta == 0f ? v : v + beta * *ce;
        }
    }
}
