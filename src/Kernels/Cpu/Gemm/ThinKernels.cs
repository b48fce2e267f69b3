// Source: Goto & van de Geijn, "Anatomy of high-performance matrix multiplication" (TOMS 2008) and BLIS's micro-kernel
//         design; the semantics of BLAS sgemm.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace NativeReasoner.Kernels.Cpu.Gemm;

/// <summary>
/// Register-blocked AVX-512 kernels for products with very few rows (a decode step's tokens, an expert's one
/// or two rows): C = alpha·op(A)·op(B) + beta·C written straight from Vector512 accumulators, with no call
/// per dot product or per AXPY (at these sizes a TensorPrimitives call costs more than its arithmetic).
/// beta = 0 never reads C. Callers check <see cref="Supported"/>; scalar past the last full vector.
/// </summary>
internal static unsafe class ThinKernels
{
    public static bool Supported => Vector512.IsHardwareAccelerated;
    /// <summary>How far ahead of the B rows being read the dot kernel prefetches (4 KiB).</summary>
    private const int PrefetchFloats = 1024;

    /// <summary>Prefetches the first 4 KiB at p (the next grouped item's B while this one computes).</summary>
    public static void PrefetchHead(float* p)
    {
        if (!Sse.IsSupported) return;
        for (int q = 0; q < PrefetchFloats; q += 16) Sse.Prefetch0(p + q);
    }


    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store1(float* c, float s, float alpha, float beta) =>
        *c = beta == 0f ? alpha * s : alpha * s + beta * *c;

    /// <summary>
    /// C[m, n] = alpha·A·Bᵀ + beta·C, A rows at a + r·lda (length k), B rows at b + col·ldb (length k): four
    /// columns of C at a time, each a dot product in a 16-wide FMA accumulator and one horizontal sum. The
    /// four B rows stay in L1 across the m rows of A.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotsNT(int m, int n, int k, float* a, long lda, float* b, long ldb, float* c, long ldc, float alpha, float beta)
    {
        int kv = k & ~15;
        int col = 0;
        for (; col + 4 <= n; col += 4)
        {
            float* b0 = b + col * ldb, b1 = b0 + ldb, b2 = b1 + ldb, b3 = b2 + ldb;
            // The four B rows' span one prefetch distance ahead (weights are streamed once per step and are
            // rarely in L2: the prefetches keep enough lines in flight). Past the end they are harmless.
            if (Sse.IsSupported)
            {
                float* f = b0 + PrefetchFloats;
                for (long q = 0; q < 4 * ldb; q += 16) Sse.Prefetch0(f + q);
            }
            for (int r = 0; r < m; r++)
            {
                float* ar = a + r * lda;
                Vector512<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
                for (int p = 0; p < kv; p += 16)
                {
                    var va = Vector512.Load(ar + p);
                    acc0 = Vector512.FusedMultiplyAdd(va, Vector512.Load(b0 + p), acc0);
                    acc1 = Vector512.FusedMultiplyAdd(va, Vector512.Load(b1 + p), acc1);
                    acc2 = Vector512.FusedMultiplyAdd(va, Vector512.Load(b2 + p), acc2);
                    acc3 = Vector512.FusedMultiplyAdd(va, Vector512.Load(b3 + p), acc3);
                }
                float* cr = c + r * ldc + col;
                if (kv == k && Avx.IsSupported)
                {
                    // The four horizontal sums at once: halves added, then three pairwise adds leave
                    // [Σacc0, Σacc1, Σacc2, Σacc3] in one 128-bit vector, stored with alpha and beta in one go.
                    var h = Sum4(acc0, acc1, acc2, acc3) * alpha;
                    if (beta != 0f) h = Vector128.FusedMultiplyAdd(Vector128.Load(cr), Vector128.Create(beta), h);
                    h.Store(cr);
                    continue;
                }
                float s0 = Vector512.Sum(acc0), s1 = Vector512.Sum(acc1), s2 = Vector512.Sum(acc2), s3 = Vector512.Sum(acc3);
                for (int p = kv; p < k; p++)
                {
                    float ap = ar[p];
                    s0 += ap * b0[p];
                    s1 += ap * b1[p];
                    s2 += ap * b2[p];
                    s3 += ap * b3[p];
                }
                Store1(cr, s0, alpha, beta);
                Store1(cr + 1, s1, alpha, beta);
                Store1(cr + 2, s2, alpha, beta);
                Store1(cr + 3, s3, alpha, beta);
            }
        }
        for (; col < n; col++)
        {
            float* bc = b + col * ldb;
            for (int r = 0; r < m; r++)
            {
                float* ar = a + r * lda;
                Vector512<float> acc = default;
                for (int p = 0; p < kv; p += 16) acc = Vector512.FusedMultiplyAdd(Vector512.Load(ar + p), Vector512.Load(bc + p), acc);
                float s = Vector512.Sum(acc);
                for (int p = kv; p < k; p++) s += ar[p] * bc[p];
                Store1(c + r * ldc + col, s, alpha, beta);
            }
        }
    }

    /// <summary>[Σa, Σb, Σc, Σd] of four 16-float vectors (the order of the additions differs from Vector512.Sum's).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Sum4(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d)
    {
        var a8 = a.GetLower() + a.GetUpper();
        var b8 = b.GetLower() + b.GetUpper();
        var c8 = c.GetLower() + c.GetUpper();
        var d8 = d.GetLower() + d.GetUpper();
        // hadd(x, y) = [x0+x1, x2+x3, y0+y1, y2+y3 | x4+x5, x6+x7, y4+y5, y6+y7]
        var ab = Avx.HorizontalAdd(a8, b8);
        var cd = Avx.HorizontalAdd(c8, d8);
        var abcd = Avx.HorizontalAdd(ab, cd);   // [a0123, b0123, c0123, d0123 | a4567, b4567, c4567, d4567]
        return abcd.GetLower() + abcd.GetUpper();
    }

    /// <summary>
    /// C[m, n] = alpha·op(A)·B + beta·C with op(A)[r, p] = a[r·rowStride + p·colStride] and B rows at
    /// b + p·ldb (length n): each C row is Σ_p op(A)[r, p]·B[p, :], built 64 and then 16 columns at a time
    /// in registers (independent FMA chains), scalar for the last n mod 16 columns. The column block is the
    /// outer loop, so its slice of B is reused from L1 by all m rows.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Axpy(int m, int n, int k, float* a, long rowStride, long colStride, float* b, long ldb, float* c, long ldc, float alpha, float beta)
    {
        var va = Vector512.Create(alpha);
        var vb = Vector512.Create(beta);
        int j = 0;
        for (; j + 64 <= n; j += 64)
        {
            for (int r = 0; r < m; r++)
            {
                float* ar = a + r * rowStride;
                float* cr = c + r * ldc + j;
                Vector512<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
                float* bp = b + j;
                for (int p = 0; p < k; p++, bp += ldb)
                {
                    var x = Vector512.Create(ar[p * colStride]);
                    acc0 = Vector512.FusedMultiplyAdd(x, Vector512.Load(bp), acc0);
                    acc1 = Vector512.FusedMultiplyAdd(x, Vector512.Load(bp + 16), acc1);
                    acc2 = Vector512.FusedMultiplyAdd(x, Vector512.Load(bp + 32), acc2);
                    acc3 = Vector512.FusedMultiplyAdd(x, Vector512.Load(bp + 48), acc3);
                }
                if (beta == 0f)
                {
                    (acc0 * va).Store(cr);
                    (acc1 * va).Store(cr + 16);
                    (acc2 * va).Store(cr + 32);
                    (acc3 * va).Store(cr + 48);
                }
                else
                {
                    Vector512.FusedMultiplyAdd(acc0, va, Vector512.Load(cr) * vb).Store(cr);
                    Vector512.FusedMultiplyAdd(acc1, va, Vector512.Load(cr + 16) * vb).Store(cr + 16);
                    Vector512.FusedMultiplyAdd(acc2, va, Vector512.Load(cr + 32) * vb).Store(cr + 32);
                    Vector512.FusedMultiplyAdd(acc3, va, Vector512.Load(cr + 48) * vb).Store(cr + 48);
                }
            }
        }
        for (; j + 16 <= n; j += 16)
        {
            for (int r = 0; r < m; r++)
            {
                float* ar = a + r * rowStride;
                float* cr = c + r * ldc + j;
                Vector512<float> acc = default;
                float* bp = b + j;
                for (int p = 0; p < k; p++, bp += ldb)
                    acc = Vector512.FusedMultiplyAdd(Vector512.Create(ar[p * colStride]), Vector512.Load(bp), acc);
                if (beta == 0f) (acc * va).Store(cr);
                else Vector512.FusedMultiplyAdd(acc, va, Vector512.Load(cr) * vb).Store(cr);
            }
        }
        for (; j < n; j++)
        {
            for (int r = 0; r < m; r++)
            {
                float* ar = a + r * rowStride;
                float s = 0f;
                for (int p = 0; p < k; p++) s += ar[p * colStride] * b[p * ldb + j];
                Store1(c + r * ldc + j, s, alpha, beta);
            }
        }
    }
}
