// Source: FlashAttention-2 (arXiv:2307.08691): tiled attention with an online softmax and a saved log-sum-exp; grouped
//         K/V heads as GQA (arXiv:2305.13245).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using NativeReasoner.Kernels.Cpu.Gemm;

namespace NativeReasoner.Kernels.Cpu.Attention;

/// <summary>
/// Small dense products on attention tiles (at most a few hundred on a side, already in L1/L2), so no
/// packing: C[m×n] (+)= A[m×k] · B[k×n] with B row-major (vector loads along n) and A read by broadcast
/// through arbitrary strides, A(i,p) = a[i·aRs + p·aCs]. A transposed A is therefore free (swap strides);
/// only B must be laid out row-major, which callers arrange with <see cref="Transpose"/>.
/// </summary>
internal static unsafe class TileMath
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MatMul(int m, int n, int k, float* a, long aRs, long aCs, float* b, long ldb,
        float* c, long ldc, bool accumulate)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 8 <= m; i += 8) Rows8(n, k, a + i * aRs, aRs, aCs, b, ldb, c + i * ldc, ldc, accumulate);
        for (; i + 4 <= m; i += 4) Rows4(n, k, a + i * aRs, aRs, aCs, b, ldb, c + i * ldc, ldc, accumulate);
        for (; i < m; i++) Row1(n, k, a + i * aRs, aCs, b, ldb, c + i * ldc, accumulate);
    }

    /// <summary>
    /// Eight rows of C, 32 columns at a time: 16 zmm accumulators, so each FMA chain has a full step of slack
    /// behind the 4-cycle latency (4 × 32 leaves none), and per k step 2 B loads + 8 broadcasts feed 16 FMAs
    /// instead of 6 feeding 8. Column remainders (n mod 32) go to <see cref="Rows4"/> on both row halves.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows8(int n, int k, float* a, long aRs, long aCs, float* b, long ldb, float* c, long ldc, bool acc)
    {
        float* a0 = a, a1 = a + aRs, a2 = a + 2 * aRs, a3 = a + 3 * aRs;
        float* a4 = a + 4 * aRs, a5 = a + 5 * aRs, a6 = a + 6 * aRs, a7 = a + 7 * aRs;
        int j = 0;
        for (; j + 32 <= n; j += 32)
        {
            float* cj = c + j;
            Vector512<float> s00, s01, s10, s11, s20, s21, s30, s31, s40, s41, s50, s51, s60, s61, s70, s71;
            if (acc)
            {
                s00 = Vector512.Load(cj); s01 = Vector512.Load(cj + 16);
                s10 = Vector512.Load(cj + ldc); s11 = Vector512.Load(cj + ldc + 16);
                s20 = Vector512.Load(cj + 2 * ldc); s21 = Vector512.Load(cj + 2 * ldc + 16);
                s30 = Vector512.Load(cj + 3 * ldc); s31 = Vector512.Load(cj + 3 * ldc + 16);
                s40 = Vector512.Load(cj + 4 * ldc); s41 = Vector512.Load(cj + 4 * ldc + 16);
                s50 = Vector512.Load(cj + 5 * ldc); s51 = Vector512.Load(cj + 5 * ldc + 16);
                s60 = Vector512.Load(cj + 6 * ldc); s61 = Vector512.Load(cj + 6 * ldc + 16);
                s70 = Vector512.Load(cj + 7 * ldc); s71 = Vector512.Load(cj + 7 * ldc + 16);
            }
            else
            {
                s00 = s01 = s10 = s11 = s20 = s21 = s30 = s31 = Vector512<float>.Zero;
                s40 = s41 = s50 = s51 = s60 = s61 = s70 = s71 = Vector512<float>.Zero;
            }
            float* bp = b + j;
            long ap = 0;
            for (int p = 0; p < k; p++, bp += ldb, ap += aCs)
            {
                var b0 = Vector512.Load(bp); var b1 = Vector512.Load(bp + 16);
                var x = Vector512.Create(a0[ap]);
                s00 = Vector512.FusedMultiplyAdd(x, b0, s00); s01 = Vector512.FusedMultiplyAdd(x, b1, s01);
                x = Vector512.Create(a1[ap]);
                s10 = Vector512.FusedMultiplyAdd(x, b0, s10); s11 = Vector512.FusedMultiplyAdd(x, b1, s11);
                x = Vector512.Create(a2[ap]);
                s20 = Vector512.FusedMultiplyAdd(x, b0, s20); s21 = Vector512.FusedMultiplyAdd(x, b1, s21);
                x = Vector512.Create(a3[ap]);
                s30 = Vector512.FusedMultiplyAdd(x, b0, s30); s31 = Vector512.FusedMultiplyAdd(x, b1, s31);
                x = Vector512.Create(a4[ap]);
                s40 = Vector512.FusedMultiplyAdd(x, b0, s40); s41 = Vector512.FusedMultiplyAdd(x, b1, s41);
                x = Vector512.Create(a5[ap]);
                s50 = Vector512.FusedMultiplyAdd(x, b0, s50); s51 = Vector512.FusedMultiplyAdd(x, b1, s51);
                x = Vector512.Create(a6[ap]);
                s60 = Vector512.FusedMultiplyAdd(x, b0, s60); s61 = Vector512.FusedMultiplyAdd(x, b1, s61);
                x = Vector512.Create(a7[ap]);
                s70 = Vector512.FusedMultiplyAdd(x, b0, s70); s71 = Vector512.FusedMultiplyAdd(x, b1, s71);
            }
            s00.Store(cj); s01.Store(cj + 16);
            s10.Store(cj + ldc); s11.Store(cj + ldc + 16);
            s20.Store(cj + 2 * ldc); s21.Store(cj + 2 * ldc + 16);
            s30.Store(cj + 3 * ldc); s31.Store(cj + 3 * ldc + 16);
            s40.Store(cj + 4 * ldc); s41.Store(cj + 4 * ldc + 16);
            s50.Store(cj + 5 * ldc); s51.Store(cj + 5 * ldc + 16);
            s60.Store(cj + 6 * ldc); s61.Store(cj + 6 * ldc + 16);
            s70.Store(cj + 7 * ldc); s71.Store(cj + 7 * ldc + 16);
        }
        if (j < n)
        {
            Rows4(n - j, k, a, aRs, aCs, b + j, ldb, c + j, ldc, acc);
            Rows4(n - j, k, a4, aRs, aCs, b + j, ldb, c + 4 * ldc + j, ldc, acc);
        }
    }

    /// <summary>Four rows of C: 4 × 32 (8 zmm accumulators), then 4 × 16, 4 × 8, scalar columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows4(int n, int k, float* a, long aRs, long aCs, float* b, long ldb, float* c, long ldc, bool acc)
    {
        float* a0 = a, a1 = a + aRs, a2 = a + 2 * aRs, a3 = a + 3 * aRs;
        float* c0 = c, c1 = c + ldc, c2 = c + 2 * ldc, c3 = c + 3 * ldc;
        int j = 0;
        for (; j + 32 <= n; j += 32)
        {
            Vector512<float> s00, s01, s10, s11, s20, s21, s30, s31;
            if (acc)
            {
                s00 = Vector512.Load(c0 + j); s01 = Vector512.Load(c0 + j + 16);
                s10 = Vector512.Load(c1 + j); s11 = Vector512.Load(c1 + j + 16);
                s20 = Vector512.Load(c2 + j); s21 = Vector512.Load(c2 + j + 16);
                s30 = Vector512.Load(c3 + j); s31 = Vector512.Load(c3 + j + 16);
            }
            else
            {
                s00 = s01 = s10 = s11 = s20 = s21 = s30 = s31 = Vector512<float>.Zero;
            }
            float* bp = b + j;
            long ap = 0;
            for (int p = 0; p < k; p++, bp += ldb, ap += aCs)
            {
                var b0 = Vector512.Load(bp); var b1 = Vector512.Load(bp + 16);
                var x = Vector512.Create(a0[ap]);
                s00 = Vector512.FusedMultiplyAdd(x, b0, s00); s01 = Vector512.FusedMultiplyAdd(x, b1, s01);
                x = Vector512.Create(a1[ap]);
                s10 = Vector512.FusedMultiplyAdd(x, b0, s10); s11 = Vector512.FusedMultiplyAdd(x, b1, s11);
                x = Vector512.Create(a2[ap]);
                s20 = Vector512.FusedMultiplyAdd(x, b0, s20); s21 = Vector512.FusedMultiplyAdd(x, b1, s21);
                x = Vector512.Create(a3[ap]);
                s30 = Vector512.FusedMultiplyAdd(x, b0, s30); s31 = Vector512.FusedMultiplyAdd(x, b1, s31);
            }
            s00.Store(c0 + j); s01.Store(c0 + j + 16);
            s10.Store(c1 + j); s11.Store(c1 + j + 16);
            s20.Store(c2 + j); s21.Store(c2 + j + 16);
            s30.Store(c3 + j); s31.Store(c3 + j + 16);
        }
        for (; j + 16 <= n; j += 16)
        {
            var s0 = acc ? Vector512.Load(c0 + j) : Vector512<float>.Zero;
            var s1 = acc ? Vector512.Load(c1 + j) : Vector512<float>.Zero;
            var s2 = acc ? Vector512.Load(c2 + j) : Vector512<float>.Zero;
            var s3 = acc ? Vector512.Load(c3 + j) : Vector512<float>.Zero;
            float* bp = b + j;
            long ap = 0;
            for (int p = 0; p < k; p++, bp += ldb, ap += aCs)
            {
                var b0 = Vector512.Load(bp);
                s0 = Vector512.FusedMultiplyAdd(Vector512.Create(a0[ap]), b0, s0);
                s1 = Vector512.FusedMultiplyAdd(Vector512.Create(a1[ap]), b0, s1);
                s2 = Vector512.FusedMultiplyAdd(Vector512.Create(a2[ap]), b0, s2);
                s3 = Vector512.FusedMultiplyAdd(Vector512.Create(a3[ap]), b0, s3);
            }
            s0.Store(c0 + j); s1.Store(c1 + j); s2.Store(c2 + j); s3.Store(c3 + j);
        }
        for (; j + 8 <= n; j += 8)
        {
            var s0 = acc ? Vector256.Load(c0 + j) : Vector256<float>.Zero;
            var s1 = acc ? Vector256.Load(c1 + j) : Vector256<float>.Zero;
            var s2 = acc ? Vector256.Load(c2 + j) : Vector256<float>.Zero;
            var s3 = acc ? Vector256.Load(c3 + j) : Vector256<float>.Zero;
            float* bp = b + j;
            long ap = 0;
            for (int p = 0; p < k; p++, bp += ldb, ap += aCs)
            {
                var b0 = Vector256.Load(bp);
                s0 = Vector256.FusedMultiplyAdd(Vector256.Create(a0[ap]), b0, s0);
                s1 = Vector256.FusedMultiplyAdd(Vector256.Create(a1[ap]), b0, s1);
                s2 = Vector256.FusedMultiplyAdd(Vector256.Create(a2[ap]), b0, s2);
                s3 = Vector256.FusedMultiplyAdd(Vector256.Create(a3[ap]), b0, s3);
            }
            s0.Store(c0 + j); s1.Store(c1 + j); s2.Store(c2 + j); s3.Store(c3 + j);
        }
        for (; j < n; j++)
        {
            float s0 = acc ? c0[j] : 0f, s1 = acc ? c1[j] : 0f, s2 = acc ? c2[j] : 0f, s3 = acc ? c3[j] : 0f;
            float* bp = b + j;
            long ap = 0;
            for (int p = 0; p < k; p++, bp += ldb, ap += aCs)
            {
                float bv = *bp;
                s0 = MathF.FusedMultiplyAdd(a0[ap], bv, s0);
                s1 = MathF.FusedMultiplyAdd(a1[ap], bv, s1);
                s2 = MathF.FusedMultiplyAdd(a2[ap], bv, s2);
                s3 = MathF.FusedMultiplyAdd(a3[ap], bv, s3);
            }
            c0[j] = s0; c1[j] = s1; c2[j] = s2; c3[j] = s3;
        }
    }

    /// <summary>One row of C (the m mod 4 remainder).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Row1(int n, int k, float* a, long aCs, float* b, long ldb, float* c, bool acc)
    {
        int j = 0;
        for (; j + 16 <= n; j += 16)
        {
            var s = acc ? Vector512.Load(c + j) : Vector512<float>.Zero;
            float* bp = b + j;
            long ap = 0;
            for (int p = 0; p < k; p++, bp += ldb, ap += aCs)
                s = Vector512.FusedMultiplyAdd(Vector512.Create(a[ap]), Vector512.Load(bp), s);
            s.Store(c + j);
        }
        for (; j < n; j++)
        {
            float s = acc ? c[j] : 0f;
            float* bp = b + j;
            long ap = 0;
            for (int p = 0; p < k; p++, bp += ldb, ap += aCs) s = MathF.FusedMultiplyAdd(a[ap], *bp, s);
            c[j] = s;
        }
    }

    /// <summary>dst[c·ldd + r] = src[r·lds + c] for r &lt; rows, c &lt; cols (8 × 8 register blocks, scalar edges).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Transpose(float* src, long lds, int rows, int cols, float* dst, long ldd)
    {
        int r = 0;
        if (Avx.IsSupported)
        {
            for (; r + 8 <= rows; r += 8)
            {
                int col = 0;
                for (; col + 8 <= cols; col += 8) Sgemm.Transpose8x8(src + r * lds + col, lds, dst + col * ldd + r, ldd);
                for (; col < cols; col++)
                    for (int rr = r; rr < r + 8; rr++) dst[col * ldd + rr] = src[rr * lds + col];
            }
        }
        for (; r < rows; r++)
        {
            float* s = src + r * lds;
            for (int col = 0; col < cols; col++) dst[col * ldd + r] = s[col];
        }
    }

    /// <summary>Horizontal max by halving (512 → 256 → 128 bits, then 4 scalars): no per-lane extraction loop.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float MaxLanes(Vector512<float> v)
    {
        var h = Vector256.Max(v.GetLower(), v.GetUpper());
        var q = Vector128.Max(h.GetLower(), h.GetUpper());
        return Math.Max(Math.Max(q.GetElement(0), q.GetElement(1)), Math.Max(q.GetElement(2), q.GetElement(3)));
    }

    /// <summary>Max of row[c] for c &lt; n (−∞ when n = 0); the row is only read.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Max(float* row, int n)
    {
        var vm = Vector512.Create(float.NegativeInfinity);
        int c = 0;
        for (; c + 16 <= n; c += 16) vm = Vector512.Max(vm, Vector512.Load(row + c));
        float m = MaxLanes(vm);
        for (; c < n; c++) m = Math.Max(m, row[c]);
        return m;
    }

    /// <summary>row[c] = row[c]·scale − shift for c &lt; visible, −∞ for visible ≤ c &lt; n (exp then gives 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ScaleShiftMask(float* row, int n, int visible, float scale, float shift)
    {
        var vs = Vector512.Create(scale);
        var vsh = Vector512.Create(shift);
        int c = 0;
        for (; c + 16 <= visible; c += 16) Vector512.FusedMultiplyAdd(Vector512.Load(row + c), vs, -vsh).Store(row + c);
        for (; c < visible; c++) row[c] = row[c] * scale - shift;
        for (; c < n; c++) row[c] = float.NegativeInfinity;
    }

    /// <summary>Σ row[c] for c &lt; n.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Sum(float* row, int n)
    {
        var acc = Vector512<float>.Zero;
        int c = 0;
        for (; c + 16 <= n; c += 16) acc += Vector512.Load(row + c);
        float s = Vector512.Sum(acc);
        for (; c < n; c++) s += row[c];
        return s;
    }

    /// <summary>dp[c] = p[c] · (dp[c] − d) for c &lt; n: the softmax backward of one score row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SoftmaxGradRow(float* p, float* dp, int n, float d)
    {
        var vd = Vector512.Create(d);
        int c = 0;
        for (; c + 16 <= n; c += 16) (Vector512.Load(p + c) * (Vector512.Load(dp + c) - vd)).Store(dp + c);
        for (; c < n; c++) dp[c] = p[c] * (dp[c] - d);
    }
}
