using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace NativeReasoner.Kernels.Cpu.Gemm;

/// <summary>
/// Unpacked register-blocked AVX-512 GEMM for small products whose op(B) rows are contiguous (no transB):
/// C[m, n] = alpha·op(A)·B + beta·C, op(A)[r, p] = a[r·aRow + p·aCol] (so transA is a stride swap). Meant for
/// the per-expert items of a grouped GEMM in backward (M ≈ 64 rows, N and K 32…128), where packing A and B
/// for the tiled kernel costs as much as the arithmetic. Blocks of 8 rows × 32 columns in 16 accumulators:
/// per k step two B vectors and eight broadcasts of op(A). Column strips outer, so a strip of B (K × 32) stays
/// in L1 across the row blocks. beta = 0 never reads C. Callers check <see cref="Applies"/>.
/// </summary>
internal static unsafe class SmallGemm
{
    /// <summary>The largest B (K·N floats) taken: it should stay in L2 while every row block streams it.</summary>
    private const long MaxBFloats = 64 * 1024;

    public static bool Applies(bool transB, int m, int n, int k) =>
        Vector512.IsHardwareAccelerated && !transB && m >= 1 && n >= 16 && k >= 1 && (long)k * n <= MaxBFloats;

    public static void Run(int m, int n, int k, float alpha, float* a, long aRow, long aCol, float* b, long ldb,
        float beta, float* c, long ldc)
    {
        int col = 0;
        for (; col + 32 <= n; col += 32)
        {
            int r = 0;
            for (; r + 8 <= m; r += 8) Block8x32(k, alpha, a + r * aRow, aRow, aCol, b + col, ldb, beta, c + r * ldc + col, ldc);
            for (; r < m; r++) Row(32, k, alpha, a + r * aRow, aCol, b + col, ldb, beta, c + r * ldc + col);
        }
        if (col + 16 <= n)
        {
            int r = 0;
            for (; r + 6 <= m; r += 6) Block6x16(k, alpha, a + r * aRow, aRow, aCol, b + col, ldb, beta, c + r * ldc + col, ldc);
            for (; r < m; r++) Row(16, k, alpha, a + r * aRow, aCol, b + col, ldb, beta, c + r * ldc + col);
            col += 16;
        }
        if (col < n)
        {
            // The last n − col (< 16) columns: scalar dots.
            for (int r = 0; r < m; r++)
            {
                float* ar = a + r * aRow;
                for (int j = col; j < n; j++)
                {
                    float s = 0f;
                    for (int p = 0; p < k; p++) s += ar[p * aCol] * b[p * ldb + j];
                    float* cj = c + r * ldc + j;
                    *cj = beta == 0f ? alpha * s : alpha * s + beta * *cj;
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, Vector512<float> acc, Vector512<float> alpha, float beta)
    {
        var v = acc * alpha;
        if (beta != 0f) v = Vector512.FusedMultiplyAdd(Vector512.Load(c), Vector512.Create(beta), v);
        v.Store(c);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Block8x32(int k, float alpha, float* a, long aRow, long aCol, float* b, long ldb, float beta, float* c, long ldc)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default, c70 = default, c71 = default;
        float* a0 = a, a1 = a + aRow, a2 = a1 + aRow, a3 = a2 + aRow, a4 = a3 + aRow, a5 = a4 + aRow, a6 = a5 + aRow, a7 = a6 + aRow;
        for (int p = 0; p < k; p++)
        {
            long o = p * aCol;
            float* bp = b + p * ldb;
            var b0 = Vector512.Load(bp);
            var b1 = Vector512.Load(bp + 16);
            var x = Vector512.Create(a0[o]);
            c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a1[o]);
            c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(a2[o]);
            c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(a3[o]);
            c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(a4[o]);
            c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(a5[o]);
            c50 = Vector512.FusedMultiplyAdd(x, b0, c50); c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
            x = Vector512.Create(a6[o]);
            c60 = Vector512.FusedMultiplyAdd(x, b0, c60); c61 = Vector512.FusedMultiplyAdd(x, b1, c61);
            x = Vector512.Create(a7[o]);
            c70 = Vector512.FusedMultiplyAdd(x, b0, c70); c71 = Vector512.FusedMultiplyAdd(x, b1, c71);
        }
        var al = Vector512.Create(alpha);
        Store(c, c00, al, beta); Store(c + 16, c01, al, beta); c += ldc;
        Store(c, c10, al, beta); Store(c + 16, c11, al, beta); c += ldc;
        Store(c, c20, al, beta); Store(c + 16, c21, al, beta); c += ldc;
        Store(c, c30, al, beta); Store(c + 16, c31, al, beta); c += ldc;
        Store(c, c40, al, beta); Store(c + 16, c41, al, beta); c += ldc;
        Store(c, c50, al, beta); Store(c + 16, c51, al, beta); c += ldc;
        Store(c, c60, al, beta); Store(c + 16, c61, al, beta); c += ldc;
        Store(c, c70, al, beta); Store(c + 16, c71, al, beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Block6x16(int k, float alpha, float* a, long aRow, long aCol, float* b, long ldb, float beta, float* c, long ldc)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        float* a0 = a, a1 = a + aRow, a2 = a1 + aRow, a3 = a2 + aRow, a4 = a3 + aRow, a5 = a4 + aRow;
        for (int p = 0; p < k; p++)
        {
            long o = p * aCol;
            var b0 = Vector512.Load(b + p * ldb);
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(a0[o]), b0, c0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.Create(a1[o]), b0, c1);
            c2 = Vector512.FusedMultiplyAdd(Vector512.Create(a2[o]), b0, c2);
            c3 = Vector512.FusedMultiplyAdd(Vector512.Create(a3[o]), b0, c3);
            c4 = Vector512.FusedMultiplyAdd(Vector512.Create(a4[o]), b0, c4);
            c5 = Vector512.FusedMultiplyAdd(Vector512.Create(a5[o]), b0, c5);
        }
        var al = Vector512.Create(alpha);
        Store(c, c0, al, beta); c += ldc;
        Store(c, c1, al, beta); c += ldc;
        Store(c, c2, al, beta); c += ldc;
        Store(c, c3, al, beta); c += ldc;
        Store(c, c4, al, beta); c += ldc;
        Store(c, c5, al, beta);
    }

    /// <summary>One row of C, <paramref name="width"/> (16 or 32) columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Row(int width, int k, float alpha, float* a, long aCol, float* b, long ldb, float beta, float* c)
    {
        Vector512<float> c0 = default, c1 = default;
        bool two = width == 32;
        for (int p = 0; p < k; p++)
        {
            var x = Vector512.Create(a[p * aCol]);
            float* bp = b + p * ldb;
            c0 = Vector512.FusedMultiplyAdd(x, Vector512.Load(bp), c0);
            if (two) c1 = Vector512.FusedMultiplyAdd(x, Vector512.Load(bp + 16), c1);
        }
        var al = Vector512.Create(alpha);
        Store(c, c0, al, beta);
        if (two) Store(c + 16, c1, al, beta);
    }
}
