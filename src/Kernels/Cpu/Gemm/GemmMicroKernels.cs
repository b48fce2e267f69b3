// Source: Goto & van de Geijn, "Anatomy of high-performance matrix multiplication" (TOMS 2008) and BLIS's micro-kernel
//         design; the semantics of BLAS sgemm.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace NativeReasoner.Kernels.Cpu.Gemm;

/// <summary>
/// Register-blocked micro-kernels: C[MR×NR] (row stride ldc) = alpha · Ã·B̃ + beta · C over kc steps, where
/// Ã is a packed A sliver [kc][MR] and B̃ a packed B sliver [kc][NR] (zero padded, so every kernel always
/// computes the full tile). beta = 0: C is only written. Edge tiles are computed into a scratch tile by the
/// driver and merged there.
/// </summary>
internal static unsafe class GemmMicroKernels
{
    /// <summary>AVX-512: 8 rows × 32 columns = 16 zmm accumulators; per k: 2 B loads, 8 A broadcasts.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Avx512_8x32(float* a, float* b, int kc, float* c, long ldc, float alpha, float beta)
    {
        Vector512<float> c00 = default, c01 = default;
        Vector512<float> c10 = default, c11 = default;
        Vector512<float> c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default;
        Vector512<float> c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default;
        Vector512<float> c70 = default, c71 = default;
        int p = 0;
        // Unrolled by two to halve the loop overhead; the tail step handles odd kc.
        for (; p + 1 < kc; p += 2, a += 16, b += 64)
        {
            {
                var b0 = Vector512.Load(b + 0); var b1 = Vector512.Load(b + 16);
                { var x = Vector512.Create(a[0]); c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01); }
                { var x = Vector512.Create(a[1]); c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11); }
                { var x = Vector512.Create(a[2]); c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21); }
                { var x = Vector512.Create(a[3]); c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31); }
                { var x = Vector512.Create(a[4]); c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41); }
                { var x = Vector512.Create(a[5]); c50 = Vector512.FusedMultiplyAdd(x, b0, c50); c51 = Vector512.FusedMultiplyAdd(x, b1, c51); }
                { var x = Vector512.Create(a[6]); c60 = Vector512.FusedMultiplyAdd(x, b0, c60); c61 = Vector512.FusedMultiplyAdd(x, b1, c61); }
                { var x = Vector512.Create(a[7]); c70 = Vector512.FusedMultiplyAdd(x, b0, c70); c71 = Vector512.FusedMultiplyAdd(x, b1, c71); }
            }
            {
                var b0 = Vector512.Load(b + 32); var b1 = Vector512.Load(b + 48);
                { var x = Vector512.Create(a[8]); c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01); }
                { var x = Vector512.Create(a[9]); c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11); }
                { var x = Vector512.Create(a[10]); c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21); }
                { var x = Vector512.Create(a[11]); c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31); }
                { var x = Vector512.Create(a[12]); c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41); }
                { var x = Vector512.Create(a[13]); c50 = Vector512.FusedMultiplyAdd(x, b0, c50); c51 = Vector512.FusedMultiplyAdd(x, b1, c51); }
                { var x = Vector512.Create(a[14]); c60 = Vector512.FusedMultiplyAdd(x, b0, c60); c61 = Vector512.FusedMultiplyAdd(x, b1, c61); }
                { var x = Vector512.Create(a[15]); c70 = Vector512.FusedMultiplyAdd(x, b0, c70); c71 = Vector512.FusedMultiplyAdd(x, b1, c71); }
            }
        }
        if (p < kc)
        {
            var b0 = Vector512.Load(b + 0); var b1 = Vector512.Load(b + 16);
            { var x = Vector512.Create(a[0]); c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01); }
            { var x = Vector512.Create(a[1]); c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11); }
            { var x = Vector512.Create(a[2]); c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21); }
            { var x = Vector512.Create(a[3]); c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31); }
            { var x = Vector512.Create(a[4]); c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41); }
            { var x = Vector512.Create(a[5]); c50 = Vector512.FusedMultiplyAdd(x, b0, c50); c51 = Vector512.FusedMultiplyAdd(x, b1, c51); }
            { var x = Vector512.Create(a[6]); c60 = Vector512.FusedMultiplyAdd(x, b0, c60); c61 = Vector512.FusedMultiplyAdd(x, b1, c61); }
            { var x = Vector512.Create(a[7]); c70 = Vector512.FusedMultiplyAdd(x, b0, c70); c71 = Vector512.FusedMultiplyAdd(x, b1, c71); }
        }
        var va = Vector512.Create(alpha);
        if (beta == 0f)
        {
            Vector512.Store(c00 * va, c + 0 * ldc); Vector512.Store(c01 * va, c + 0 * ldc + 16);
            Vector512.Store(c10 * va, c + 1 * ldc); Vector512.Store(c11 * va, c + 1 * ldc + 16);
            Vector512.Store(c20 * va, c + 2 * ldc); Vector512.Store(c21 * va, c + 2 * ldc + 16);
            Vector512.Store(c30 * va, c + 3 * ldc); Vector512.Store(c31 * va, c + 3 * ldc + 16);
            Vector512.Store(c40 * va, c + 4 * ldc); Vector512.Store(c41 * va, c + 4 * ldc + 16);
            Vector512.Store(c50 * va, c + 5 * ldc); Vector512.Store(c51 * va, c + 5 * ldc + 16);
            Vector512.Store(c60 * va, c + 6 * ldc); Vector512.Store(c61 * va, c + 6 * ldc + 16);
            Vector512.Store(c70 * va, c + 7 * ldc); Vector512.Store(c71 * va, c + 7 * ldc + 16);
        }
        else
        {
            var vb = Vector512.Create(beta);
            { float* cr = c + 0 * ldc; Vector512.Store(Vector512.FusedMultiplyAdd(c00, va, Vector512.Load(cr) * vb), cr); Vector512.Store(Vector512.FusedMultiplyAdd(c01, va, Vector512.Load(cr + 16) * vb), cr + 16); }
            { float* cr = c + 1 * ldc; Vector512.Store(Vector512.FusedMultiplyAdd(c10, va, Vector512.Load(cr) * vb), cr); Vector512.Store(Vector512.FusedMultiplyAdd(c11, va, Vector512.Load(cr + 16) * vb), cr + 16); }
            { float* cr = c + 2 * ldc; Vector512.Store(Vector512.FusedMultiplyAdd(c20, va, Vector512.Load(cr) * vb), cr); Vector512.Store(Vector512.FusedMultiplyAdd(c21, va, Vector512.Load(cr + 16) * vb), cr + 16); }
            { float* cr = c + 3 * ldc; Vector512.Store(Vector512.FusedMultiplyAdd(c30, va, Vector512.Load(cr) * vb), cr); Vector512.Store(Vector512.FusedMultiplyAdd(c31, va, Vector512.Load(cr + 16) * vb), cr + 16); }
            { float* cr = c + 4 * ldc; Vector512.Store(Vector512.FusedMultiplyAdd(c40, va, Vector512.Load(cr) * vb), cr); Vector512.Store(Vector512.FusedMultiplyAdd(c41, va, Vector512.Load(cr + 16) * vb), cr + 16); }
            { float* cr = c + 5 * ldc; Vector512.Store(Vector512.FusedMultiplyAdd(c50, va, Vector512.Load(cr) * vb), cr); Vector512.Store(Vector512.FusedMultiplyAdd(c51, va, Vector512.Load(cr + 16) * vb), cr + 16); }
            { float* cr = c + 6 * ldc; Vector512.Store(Vector512.FusedMultiplyAdd(c60, va, Vector512.Load(cr) * vb), cr); Vector512.Store(Vector512.FusedMultiplyAdd(c61, va, Vector512.Load(cr + 16) * vb), cr + 16); }
            { float* cr = c + 7 * ldc; Vector512.Store(Vector512.FusedMultiplyAdd(c70, va, Vector512.Load(cr) * vb), cr); Vector512.Store(Vector512.FusedMultiplyAdd(c71, va, Vector512.Load(cr + 16) * vb), cr + 16); }
        }
    }

    /// <summary>AVX2 fallback: 6 rows × 16 columns = 12 ymm accumulators.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Avx2_6x16(float* a, float* b, int kc, float* c, long ldc, float alpha, float beta)
    {
        Vector256<float> c00 = default, c01 = default;
        Vector256<float> c10 = default, c11 = default;
        Vector256<float> c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default;
        Vector256<float> c40 = default, c41 = default;
        Vector256<float> c50 = default, c51 = default;
        for (int p = 0; p < kc; p++, a += 6, b += 16)
        {
            var b0 = Vector256.Load(b); var b1 = Vector256.Load(b + 8);
            { var x = Vector256.Create(a[0]); c00 = Vector256.FusedMultiplyAdd(x, b0, c00); c01 = Vector256.FusedMultiplyAdd(x, b1, c01); }
            { var x = Vector256.Create(a[1]); c10 = Vector256.FusedMultiplyAdd(x, b0, c10); c11 = Vector256.FusedMultiplyAdd(x, b1, c11); }
            { var x = Vector256.Create(a[2]); c20 = Vector256.FusedMultiplyAdd(x, b0, c20); c21 = Vector256.FusedMultiplyAdd(x, b1, c21); }
            { var x = Vector256.Create(a[3]); c30 = Vector256.FusedMultiplyAdd(x, b0, c30); c31 = Vector256.FusedMultiplyAdd(x, b1, c31); }
            { var x = Vector256.Create(a[4]); c40 = Vector256.FusedMultiplyAdd(x, b0, c40); c41 = Vector256.FusedMultiplyAdd(x, b1, c41); }
            { var x = Vector256.Create(a[5]); c50 = Vector256.FusedMultiplyAdd(x, b0, c50); c51 = Vector256.FusedMultiplyAdd(x, b1, c51); }
        }
        var va = Vector256.Create(alpha);
        if (beta == 0f)
        {
            Vector256.Store(c00 * va, c + 0 * ldc); Vector256.Store(c01 * va, c + 0 * ldc + 8);
            Vector256.Store(c10 * va, c + 1 * ldc); Vector256.Store(c11 * va, c + 1 * ldc + 8);
            Vector256.Store(c20 * va, c + 2 * ldc); Vector256.Store(c21 * va, c + 2 * ldc + 8);
            Vector256.Store(c30 * va, c + 3 * ldc); Vector256.Store(c31 * va, c + 3 * ldc + 8);
            Vector256.Store(c40 * va, c + 4 * ldc); Vector256.Store(c41 * va, c + 4 * ldc + 8);
            Vector256.Store(c50 * va, c + 5 * ldc); Vector256.Store(c51 * va, c + 5 * ldc + 8);
        }
        else
        {
            var vb = Vector256.Create(beta);
            { float* cr = c + 0 * ldc; Vector256.Store(Vector256.FusedMultiplyAdd(c00, va, Vector256.Load(cr) * vb), cr); Vector256.Store(Vector256.FusedMultiplyAdd(c01, va, Vector256.Load(cr + 8) * vb), cr + 8); }
            { float* cr = c + 1 * ldc; Vector256.Store(Vector256.FusedMultiplyAdd(c10, va, Vector256.Load(cr) * vb), cr); Vector256.Store(Vector256.FusedMultiplyAdd(c11, va, Vector256.Load(cr + 8) * vb), cr + 8); }
            { float* cr = c + 2 * ldc; Vector256.Store(Vector256.FusedMultiplyAdd(c20, va, Vector256.Load(cr) * vb), cr); Vector256.Store(Vector256.FusedMultiplyAdd(c21, va, Vector256.Load(cr + 8) * vb), cr + 8); }
            { float* cr = c + 3 * ldc; Vector256.Store(Vector256.FusedMultiplyAdd(c30, va, Vector256.Load(cr) * vb), cr); Vector256.Store(Vector256.FusedMultiplyAdd(c31, va, Vector256.Load(cr + 8) * vb), cr + 8); }
            { float* cr = c + 4 * ldc; Vector256.Store(Vector256.FusedMultiplyAdd(c40, va, Vector256.Load(cr) * vb), cr); Vector256.Store(Vector256.FusedMultiplyAdd(c41, va, Vector256.Load(cr + 8) * vb), cr + 8); }
            { float* cr = c + 5 * ldc; Vector256.Store(Vector256.FusedMultiplyAdd(c50, va, Vector256.Load(cr) * vb), cr); Vector256.Store(Vector256.FusedMultiplyAdd(c51, va, Vector256.Load(cr + 8) * vb), cr + 8); }
        }
    }

    /// <summary>Portable fallback: 4 × 4 scalar block (also the model the SIMD kernels must match).</summary>
    public static void Scalar_4x4(float* a, float* b, int kc, float* c, long ldc, float alpha, float beta)
    {
        float* acc = stackalloc float[16];
        for (int e = 0; e < 16; e++) acc[e] = 0f;
        for (int p = 0; p < kc; p++, a += 4, b += 4)
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    acc[i * 4 + j] = MathF.FusedMultiplyAdd(a[i], b[j], acc[i * 4 + j]);
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
            {
                float* cij = c + i * ldc + j;
                *cij = beta == 0f ? alpha * acc[i * 4 + j] : alpha * acc[i * 4 + j] + beta * *cij;
            }
    }
}
