using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace NativeReasoner.Kernels.Cpu.Gemm;

/// <summary>
/// Cache-blocked, packed single-precision GEMM (the BLIS loop structure) for row-major operands:
/// C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C.
/// <code>
/// work item (batch b, rows [m0,m1), cols [n0,n1))          ← threads take whole items: no shared writes
///   for pc in K step KC:   pack op(B)[pc.., n0..n1] → B̃ [n/NR][kc][NR]   (L2)
///     for ic in m step MC: pack op(A)[ic.., pc..]   → Ã [m/MR][kc][MR]
///       for ir in m step MR:                         Ã sliver kc×MR stays in L1
///         for jr in n step NR: micro-kernel MR×NR (registers), B̃ slivers streamed from L2
/// </code>
/// Transposition is absorbed by the packing routines, so no transposed copy of an operand is ever made.
/// The first K block applies beta; later K blocks accumulate with beta = 1.
/// </summary>
internal static unsafe class Sgemm
{
    /// <summary>Below this many multiply-adds the packing overhead is not worth it: direct loops.</summary>
    private const long DirectThreshold = 32 * 1024;
    /// <summary>Below this many multiply-adds a second thread costs more than it saves.</summary>
    private const long ParallelThreshold = 1L << 20;

    private struct Job
    {
        public int MR, NR, KC, MC, NC;
        public delegate*<float*, float*, int, float*, long, float, float, void> Kernel;
        public bool TransA, TransB;
        public int M, N, K;
        public float Alpha, Beta;
        public float* A, B, C;
        public long Lda, Ldb, Ldc, StrideA, StrideB, StrideC;
        public int TileM, TileN, TilesM, TilesN;
    }

    public static void Run(GemmConfig cfg, int batch, bool transA, bool transB, int M, int N, int K, float alpha,
        float* A, int lda, long strideA, float* B, int ldb, long strideB, float beta, float* C, int ldc, long strideC)
    {
        if (batch <= 0 || M <= 0 || N <= 0) return;
        var job = new Job
        {
            MR = cfg.MR, NR = cfg.NR, KC = cfg.KC, MC = cfg.MC, NC = cfg.NC, TransA = transA, TransB = transB, M = M, N = N, K = K, Alpha = alpha, Beta = beta,
            A = A, B = B, C = C, Lda = lda, Ldb = ldb, Ldc = ldc, StrideA = strideA, StrideB = strideB, StrideC = strideC,
        };
        long macs = (long)M * N * Math.Max(K, 1);
        bool parallel = CpuParallel.Threads > 1 && macs * batch >= ParallelThreshold;

        // Few rows or columns: matrix-vector work, streamed with SIMD (also for small sizes: decode steps
        // and per-expert batches of a token or two are exactly these shapes).
        if (SgemmSkinny.Applies(M, N, K))
        {
            SgemmSkinny.Run(parallel, batch, transA, transB, M, N, K, alpha, A, lda, strideA, B, ldb, strideB,
                beta, C, ldc, strideC);
            return;
        }

        if (K == 0 || macs < DirectThreshold)
        {
            if (parallel) CpuParallel.For(batch, 1, &DirectItems, &job);
            else DirectItems(&job, 0, batch);
            return;
        }

        job.Kernel = cfg.Isa switch
        {
            GemmIsa.Avx512 => &GemmMicroKernels.Avx512_8x32,
            GemmIsa.Avx2 => &GemmMicroKernels.Avx2_6x16,
            _ => &GemmMicroKernels.Scalar_4x4,
        };
        int MR = cfg.MR, NR = cfg.NR;
        // Column tiles no wider than NC (the packed B panel), balanced so the last one is not a sliver.
        int tilesN = CeilDiv(N, cfg.NC);
        int tileN = RoundUp(CeilDiv(N, tilesN), NR);
        int tileM = RoundUp(M, MR);
        if (parallel)
        {
            // Enough items for every thread to get two: split the longer side in half. Splitting M repacks
            // B once more per tile, splitting N repacks A; halving the longer side keeps both small.
            while ((long)batch * CeilDiv(M, tileM) * CeilDiv(N, tileN) < 2L * CpuParallel.Threads)
            {
                if (tileM >= tileN && tileM >= 2 * MR) tileM = RoundUp(CeilDiv(tileM, 2), MR);
                else if (tileN >= 2 * NR) tileN = RoundUp(CeilDiv(tileN, 2), NR);
                else if (tileM >= 2 * MR) tileM = RoundUp(CeilDiv(tileM, 2), MR);
                else break;
            }
        }
        job.TileM = tileM;
        job.TileN = tileN;
        job.TilesM = CeilDiv(M, tileM);
        job.TilesN = CeilDiv(N, tileN);
        long items = (long)batch * job.TilesM * job.TilesN;
        if (parallel && items > 1) CpuParallel.For(items, 1, &PackedItems, &job);
        else PackedItems(&job, 0, items);
    }

    /// <summary>
    /// Small problems (no packing), batch items [start, end). Two SIMD forms cover the layouts the model
    /// uses: op(A) rows and op(B) columns both contiguous along K (x·Wᵀ) → one dot product per output;
    /// op(B) rows contiguous along N → rows of C accumulated as AXPYs over K. Other layouts: scalar dots.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DirectItems(void* state, long start, long end)
    {
        ref Job j = ref *(Job*)state;
        const int MaxRow = 1024;                                         // AXPY accumulator on the stack
        float* acc = stackalloc float[MaxRow];
        for (long b = start; b < end; b++)
        {
            float* a = j.A + b * j.StrideA, bm = j.B + b * j.StrideB, c = j.C + b * j.StrideC;
            long aRow = j.TransA ? 1 : j.Lda, aCol = j.TransA ? j.Lda : 1;   // op(A)[i,p] = a[i·aRow + p·aCol]
            long bRow = j.TransB ? 1 : j.Ldb, bCol = j.TransB ? j.Ldb : 1;   // op(B)[p,n] = bm[p·bRow + n·bCol]
            for (int i = 0; i < j.M; i++)
            {
                float* ci = c + i * j.Ldc;
                if (aCol == 1 && bRow == 1 && j.K > 0)
                {
                    var ai = new ReadOnlySpan<float>(a + i * aRow, j.K);
                    for (int n = 0; n < j.N; n++)
                    {
                        float sum = System.Numerics.Tensors.TensorPrimitives.Dot(ai, new ReadOnlySpan<float>(bm + n * bCol, j.K));
                        ci[n] = j.Beta == 0f ? j.Alpha * sum : j.Alpha * sum + j.Beta * ci[n];
                    }
                    continue;
                }
                if (bCol == 1 && j.N <= MaxRow)
                {
                    var row = new Span<float>(acc, j.N);
                    row.Clear();
                    for (int p = 0; p < j.K; p++)
                        Axpy(a[i * aRow + p * aCol], bm + p * bRow, acc, j.N);
                    for (int n = 0; n < j.N; n++)
                        ci[n] = j.Beta == 0f ? j.Alpha * acc[n] : j.Alpha * acc[n] + j.Beta * ci[n];
                    continue;
                }
                for (int n = 0; n < j.N; n++)
                {
                    float sum = 0f;
                    float* ap = a + i * aRow, bp = bm + n * bCol;
                    for (int p = 0; p < j.K; p++, ap += aCol, bp += bRow) sum = MathF.FusedMultiplyAdd(*ap, *bp, sum);
                    ci[n] = j.Beta == 0f ? j.Alpha * sum : j.Alpha * sum + j.Beta * ci[n];
                }
            }
        }
    }

    /// <summary>y[0..n) += s · x[0..n).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Axpy(float s, float* x, float* y, int n)
    {
        int e = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vs = Vector512.Create(s);
            for (; e <= n - 16; e += 16)
                Vector512.FusedMultiplyAdd(vs, Vector512.Load(x + e), Vector512.Load(y + e)).Store(y + e);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var vs = Vector256.Create(s);
            for (; e <= n - 8; e += 8)
                Vector256.FusedMultiplyAdd(vs, Vector256.Load(x + e), Vector256.Load(y + e)).Store(y + e);
        }
        for (; e < n; e++) y[e] = MathF.FusedMultiplyAdd(s, x[e], y[e]);
    }

    /// <summary>Work items [start, end) of the packed path; item = (batch, row tile, column tile).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackedItems(void* state, long start, long end)
    {
        ref Job j = ref *(Job*)state;
        int MR = j.MR, NR = j.NR;
        int kBlocks = CeilDiv(j.K, j.KC);
        int kcMax = CeilDiv(j.K, kBlocks);                       // balanced K blocks
        int mcMax = Math.Min(RoundUp(j.TileM, MR), j.MC);
        int ncMax = RoundUp(j.TileN, NR);
        // One scratch block: Ã [mcMax × kcMax] | B̃ [kcMax × ncMax] | edge tile [MR × NR].
        long aFloats = (long)mcMax * kcMax, bFloats = (long)kcMax * ncMax;
        float* scratch = GemmScratch.Rent(aFloats + bFloats + MR * NR);
        float* aPack = scratch, bPack = scratch + aFloats, edge = bPack + bFloats;
        try
        {
            for (long item = start; item < end; item++)
            {
                long perBatch = (long)j.TilesM * j.TilesN;
                long b = item / perBatch;
                int rem = (int)(item - b * perBatch);
                int m0 = rem / j.TilesN * j.TileM, n0 = rem % j.TilesN * j.TileN;
                int m1 = Math.Min(j.M, m0 + j.TileM), n1 = Math.Min(j.N, n0 + j.TileN);
                float* A = j.A + b * j.StrideA, B = j.B + b * j.StrideB, C = j.C + b * j.StrideC;
                int mBlocks = CeilDiv(m1 - m0, mcMax);
                int mc = RoundUp(CeilDiv(m1 - m0, mBlocks), MR);  // balanced M blocks
                for (int pc = 0; pc < j.K; pc += kcMax)
                {
                    int kc = Math.Min(kcMax, j.K - pc);
                    float beta = pc == 0 ? j.Beta : 1f;
                    PackB(j.TransB, B, j.Ldb, pc, kc, n0, n1 - n0, NR, bPack);
                    for (int ic = m0; ic < m1; ic += mc)
                    {
                        int mCur = Math.Min(mc, m1 - ic);
                        PackA(j.TransA, A, j.Lda, ic, mCur, pc, kc, MR, aPack);
                        // The A sliver (MR × kc, small) stays in L1 while the B slivers stream from the
                        // L2-resident panel: that lets KC be large, and every K block is one more read and
                        // write of all of C, so a large KC is what keeps C's memory traffic down.
                        for (int ir = 0; ir < mCur; ir += MR)
                        {
                            int mr = Math.Min(MR, mCur - ir);
                            float* aSliver = aPack + (long)ir * kc;
                            for (int jr = 0; jr < n1 - n0; jr += NR)
                            {
                                int nr = Math.Min(NR, n1 - n0 - jr);
                                float* bSliver = bPack + (long)jr * kc;
                                float* c = C + (long)(ic + ir) * j.Ldc + n0 + jr;
                                if (mr == MR && nr == NR)
                                {
                                    j.Kernel(aSliver, bSliver, kc, c, j.Ldc, j.Alpha, beta);
                                }
                                else
                                {
                                    // Partial tile: full tile into scratch (padding is zero), merge the valid part.
                                    j.Kernel(aSliver, bSliver, kc, edge, NR, 1f, 0f);
                                    MergeEdge(edge, NR, c, j.Ldc, mr, nr, j.Alpha, beta);
                                }
                            }
                        }
                    }
                }
            }
        }
        finally
        {
            GemmScratch.Return(scratch);
        }
    }

    private static void MergeEdge(float* t, int ldt, float* c, long ldc, int mr, int nr, float alpha, float beta)
    {
        for (int i = 0; i < mr; i++)
        {
            float* ci = c + i * ldc, ti = t + i * ldt;
            if (beta == 0f) for (int n = 0; n < nr; n++) ci[n] = alpha * ti[n];
            else for (int n = 0; n < nr; n++) ci[n] = alpha * ti[n] + beta * ci[n];
        }
    }

    /// <summary>
    /// Packs op(A)[row0 .. row0+m, pc .. pc+kc] into slivers of MR rows: dst[s][p][i] = op(A)[row0 + s·MR + i, pc + p],
    /// rows past m zero. op(A)[i,p] = transA ? A[p·lda + i] : A[i·lda + p].
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackA(bool transA, float* A, long lda, int row0, int m, int pc, int kc, int MR, float* dst)
    {
        for (int s = 0; s < m; s += MR, dst += (long)MR * kc)
        {
            int mr = Math.Min(MR, m - s);
            if (transA)
            {
                // Stored K×M: each k step holds MR consecutive rows of op(A) contiguously.
                float* src = A + (long)pc * lda + row0 + s;
                for (int p = 0; p < kc; p++, src += lda)
                {
                    float* d = dst + p * MR;
                    if (mr == 8 && MR == 8) { Vector256.Store(Vector256.Load(src), d); continue; }
                    int i = 0;
                    for (; i < mr; i++) d[i] = src[i];
                    for (; i < MR; i++) d[i] = 0f;
                }
            }
            else if (mr == MR && MR == 8 && Avx.IsSupported)
            {
                // Stored M×K, full sliver: 8 rows × 8 k blocks transposed in registers.
                float* src = A + (long)(row0 + s) * lda + pc;
                int p = 0;
                for (; p + 8 <= kc; p += 8) Transpose8x8(src + p, lda, dst + p * 8, 8);
                for (; p < kc; p++)
                    for (int i = 0; i < 8; i++) dst[p * 8 + i] = src[i * lda + p];
            }
            else
            {
                // Stored M×K: read each row contiguously, scatter with stride MR.
                for (int i = 0; i < MR; i++)
                {
                    float* d = dst + i;
                    if (i < mr)
                    {
                        float* src = A + (long)(row0 + s + i) * lda + pc;
                        for (int p = 0; p < kc; p++) d[p * MR] = src[p];
                    }
                    else
                    {
                        for (int p = 0; p < kc; p++) d[p * MR] = 0f;
                    }
                }
            }
        }
    }

    /// <summary>
    /// dst[c·ldd + r] = src[r·lds + c] for an 8 × 8 block: unpack pairs, shuffle quads, swap 128-bit halves.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose8x8(float* src, long lds, float* dst, long ldd)
    {
        var r0 = Avx.LoadVector256(src); var r1 = Avx.LoadVector256(src + lds);
        var r2 = Avx.LoadVector256(src + 2 * lds); var r3 = Avx.LoadVector256(src + 3 * lds);
        var r4 = Avx.LoadVector256(src + 4 * lds); var r5 = Avx.LoadVector256(src + 5 * lds);
        var r6 = Avx.LoadVector256(src + 6 * lds); var r7 = Avx.LoadVector256(src + 7 * lds);
        // t0 = a0 b0 a1 b1 | a4 b4 a5 b5, t1 = a2 b2 a3 b3 | a6 b6 a7 b7, ...
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        // u0 = a0 b0 c0 d0 | a4 b4 c4 d4, u1 = a1 b1 c1 d1 | a5 b5 c5 d5, ...
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        // Low halves give columns 0..3, high halves columns 4..7.
        Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(dst + ldd, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(dst + 2 * ldd, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(dst + 3 * ldd, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(dst + 4 * ldd, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(dst + 5 * ldd, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(dst + 6 * ldd, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(dst + 7 * ldd, Avx.Permute2x128(u3, u7, 0x31));
    }

    /// <summary>
    /// Packs op(B)[pc .. pc+kc, col0 .. col0+n] into slivers of NR columns: dst[s][p][j] = op(B)[pc + p, col0 + s·NR + j],
    /// columns past n zero. op(B)[p,j] = transB ? B[j·ldb + p] : B[p·ldb + j].
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackB(bool transB, float* B, long ldb, int pc, int kc, int col0, int n, int NR, float* dst)
    {
        for (int s = 0; s < n; s += NR, dst += (long)NR * kc)
        {
            int nr = Math.Min(NR, n - s);
            if (!transB)
            {
                // Stored K×N: each k step is a contiguous run of nr floats.
                float* src = B + (long)pc * ldb + col0 + s;
                if (nr == 32 && NR == 32 && Vector512.IsHardwareAccelerated)
                {
                    // Full AVX-512 sliver: two vector copies a k step (a Memmove call per 128 bytes cost more
                    // than the copy: it was most of the packing time of the small per-expert GEMMs).
                    for (int p = 0; p < kc; p++, src += ldb)
                    {
                        float* d = dst + p * 32;
                        Vector512.Store(Vector512.Load(src), d);
                        Vector512.Store(Vector512.Load(src + 16), d + 16);
                    }
                    continue;
                }
                for (int p = 0; p < kc; p++, src += ldb)
                {
                    float* d = dst + p * NR;
                    new ReadOnlySpan<float>(src, nr).CopyTo(new Span<float>(d, nr));
                    for (int jj = nr; jj < NR; jj++) d[jj] = 0f;
                }
            }
            else
            {
                int jj = 0;
                if (Avx.IsSupported)
                {
                    // Stored N×K: 8 rows of B (8 columns of op(B)) × 8 k, transposed in registers.
                    for (; jj + 8 <= nr; jj += 8)
                    {
                        float* src = B + (long)(col0 + s + jj) * ldb + pc;
                        int p = 0;
                        for (; p + 8 <= kc; p += 8) Transpose8x8(src + p, ldb, dst + p * NR + jj, NR);
                        for (; p < kc; p++)
                            for (int c = 0; c < 8; c++) dst[p * NR + jj + c] = src[c * ldb + p];
                    }
                }
                // Remaining columns: read each row of B contiguously, scatter with stride NR.
                for (; jj < NR; jj++)
                {
                    float* d = dst + jj;
                    if (jj < nr)
                    {
                        float* src = B + (long)(col0 + s + jj) * ldb + pc;
                        for (int p = 0; p < kc; p++) d[p * NR] = src[p];
                    }
                    else
                    {
                        for (int p = 0; p < kc; p++) d[p * NR] = 0f;
                    }
                }
            }
        }
    }

    private static int CeilDiv(int a, int b) => (a + b - 1) / b;
    private static int RoundUp(int a, int b) => CeilDiv(a, b) * b;
}
