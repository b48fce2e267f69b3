using NativeReasoner.Kernels.Cuda;
using NativeReasoner.Kernels.Cuda.Native;
using NativeReasoner.Kernels.Reference;
using NativeReasoner.Kernels.Verification;
using Xunit;
using Tile = NativeReasoner.Kernels.Cuda.CudaKernels.GemmTile;

namespace NativeReasoner.Tests.Cuda;

/// <summary>
/// Every block-tile variant of the GEMM kernels, forced (the conformance suite reaches only the variant the
/// shape heuristic picks on the device at hand): each layout, aligned (16-byte vector paths) and unaligned
/// (scalar paths) leading dimensions, partial tiles at every edge, batch with a broadcast operand, beta ≠ 0.
/// </summary>
public sealed unsafe class CudaGemmTests
{
    public static IEnumerable<object[]> Variants =>
        from tile in new[] { "Large", "Small" }
        from layout in new[] { "nn", "nt", "tn", "tt" }
        from aligned in new[] { false, true }
        select new object[] { tile, layout, aligned };

    public static IEnumerable<object[]> Tiles => new[] { "Large", "Small" }.Select(t => new object[] { t });

    [CudaTheory(CudaRuntimeKind.Emulator)]
    [MemberData(nameof(Variants))]
    public void F32OnEmulator(string tile, string layout, bool aligned) => Gemm(CudaBackend.Emulator, false, Enum.Parse<Tile>(tile), layout, aligned);

    [CudaTheory(CudaRuntimeKind.Gpu)]
    [MemberData(nameof(Variants))]
    public void F32OnGpu(string tile, string layout, bool aligned) => Gemm(CudaBackend.Gpu, false, Enum.Parse<Tile>(tile), layout, aligned);

    [CudaTheory(CudaRuntimeKind.Emulator)]
    [MemberData(nameof(Variants))]
    public void Bf16OnEmulator(string tile, string layout, bool aligned) => Gemm(CudaBackend.Emulator, true, Enum.Parse<Tile>(tile), layout, aligned);

    [CudaTheory(CudaRuntimeKind.Gpu)]
    [MemberData(nameof(Variants))]
    public void Bf16OnGpu(string tile, string layout, bool aligned) => Gemm(CudaBackend.Gpu, true, Enum.Parse<Tile>(tile), layout, aligned);

    [CudaTheory(CudaRuntimeKind.Emulator)]
    [MemberData(nameof(Tiles))]
    public void GroupedOnEmulator(string tile) => Grouped(CudaBackend.Emulator, Enum.Parse<Tile>(tile));

    [CudaTheory(CudaRuntimeKind.Gpu)]
    [MemberData(nameof(Tiles))]
    public void GroupedOnGpu(string tile) => Grouped(CudaBackend.Gpu, Enum.Parse<Tile>(tile));

    private static void Gemm(CudaBackend backend, bool bf16, Tile tile, string layout, bool aligned)
    {
        bool ta = layout[0] == 't', tb = layout[1] == 't';
        using var ctx = new KernelCheckContext(backend.Kernels, backend.Memory, (ta ? 2 : 0) + (tb ? 1 : 0) + (aligned ? 4 : 0) + 8 * (int)tile + (bf16 ? 100 : 0));
        const int batch = 2, M = 150, N = 133, K = 45;
        int aRows = ta ? K : M, aCols = ta ? M : K, bRows = tb ? N : K, bCols = tb ? K : N;
        // Aligned: every leading dimension and stride a multiple of 8 elements (16 bytes of bf16); else odd.
        int Ld(int cols) => aligned ? (cols + 8 + 7) / 8 * 8 : cols + 3;
        int lda = Ld(aCols), ldb = Ld(bCols), ldc = Ld(N);
        long sA = 0, sB = (long)bRows * ldb + (aligned ? 8 : 5), sC = (long)M * ldc + (aligned ? 16 : 1);
        var a = ctx.Rand((long)aRows * lda);
        var b = ctx.Rand((batch - 1) * sB + (long)bRows * ldb);
        var c = ctx.Rand((batch - 1) * sC + (long)M * ldc);
        var expected = (float[])c.Clone();
        float* dc = ctx.Up(c);
        const float alpha = 0.5f, beta = -2f;
        if (bf16)
        {
            var ab = ToBf16(a);
            var bb = ToBf16(b);
            backend.Kernels.GemmBf16(batch, ta, tb, M, N, K, alpha, ctx.Up(ab), lda, sA, ctx.Up(bb), ldb, sB, beta, dc, ldc, sC, tile);
            fixed (ushort* pa = ab) fixed (ushort* pb = bb) fixed (float* pc = expected)
                ReferenceKernels.Instance.GemmBf16(batch, ta, tb, M, N, K, alpha, pa, lda, sA, pb, ldb, sB, beta, pc, ldc, sC);
        }
        else
        {
            backend.Kernels.Gemm(batch, ta, tb, M, N, K, alpha, ctx.Up(a), lda, sA, ctx.Up(b), ldb, sB, beta, dc, ldc, sC, tile);
            fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = expected)
                ReferenceKernels.Instance.Gemm(batch, ta, tb, M, N, K, alpha, pa, lda, sA, pb, ldb, sB, beta, pc, ldc, sC);
        }
        ctx.Close(ctx.Down(dc, c.Length), expected, 1e-5, $"{(bf16 ? "bf16" : "f32")} {layout} {tile} aligned={aligned}");
        Assert.True(ctx.Failures.Count == 0, string.Join("\n", ctx.Failures));
    }

    private static void Grouped(CudaBackend backend, Tile tile)
    {
        using var ctx = new KernelCheckContext(backend.Kernels, backend.Memory, 77);
        int[] ms = [0, 3, 140, 64, 0, 9];
        int[] ks = [5, 0, 33, 128, 2, 61];
        const int N = 136, lda = 136, ldb = 144, ldc = 140;   // (false, true): A_i [M_i][lda], B_i [N][ldb]
        int count = ms.Length;
        var dA = new IntPtr[count];
        var dB = new IntPtr[count];
        var dC = new IntPtr[count];
        var hostA = new float[count][];
        var hostB = new float[count][];
        var expected = new float[count][];
        for (int i = 0; i < count; i++)
        {
            hostA[i] = ctx.Rand(Math.Max(1, ms[i] * lda));
            hostB[i] = ctx.Rand(N * ldb);
            var c = new float[Math.Max(1, ms[i] * ldc)];
            Array.Fill(c, float.NaN);
            expected[i] = c;
            dA[i] = (IntPtr)ctx.Up(hostA[i]);
            dB[i] = (IntPtr)ctx.Up(hostB[i]);
            dC[i] = (IntPtr)ctx.Up(c);
        }
        fixed (int* pm = ms) fixed (int* pk = ks) fixed (IntPtr* pa = dA) fixed (IntPtr* pb = dB) fixed (IntPtr* pc = dC)
            backend.Kernels.GemmGrouped(count, false, true, pm, N, pk, 1f, (float**)pa, lda, (float**)pb, ldb, 0f, (float**)pc, ldc, tile);
        for (int i = 0; i < count; i++)
        {
            var e = (float[])expected[i].Clone();
            if (ms[i] > 0)
                fixed (float* pa = hostA[i]) fixed (float* pb = hostB[i]) fixed (float* pc = e)
                    ReferenceKernels.Instance.Gemm(1, false, true, ms[i], N, ks[i], 1f, pa, lda, 0, pb, ldb, 0, 0f, pc, ldc, 0);
            ctx.Close(ctx.Down((float*)dC[i], e.Length), e, 1e-5, $"grouped {tile} item {i}");
        }
        Assert.True(ctx.Failures.Count == 0, string.Join("\n", ctx.Failures));
    }

    private static ushort[] ToBf16(float[] x)
    {
        var r = new ushort[x.Length];
        fixed (float* p = x) fixed (ushort* q = r) ReferenceKernels.Instance.FloatToBFloat16(p, q, x.Length);
        return r;
    }
}
