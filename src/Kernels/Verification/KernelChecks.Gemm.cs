// Source: ggml's test-backend-ops: every backend op checked against a reference at awkward sizes.
using System.Runtime.InteropServices;

namespace NativeReasoner.Kernels.Verification;

public static unsafe partial class KernelChecks
{
    // fp32 GEMM against the double-accumulating reference: the kernels accumulate in fp32, so the error is
    // summation rounding, ~√K·2⁻²⁴ relative (≈ 1e-6 at K = 257); 1e-5 leaves headroom, a wrong element does not pass.
    private const double GemmF32Tol = 1e-5;

    // bf16 GEMM against ReferenceKernels.GemmBf16 on the same bf16 bits: a product of two bf16 values (8-bit
    // significands) is exact in fp32 (16 ≤ 24 bits), so the kernel and the reference sum the same exact terms
    // and differ only by fp32 summation order and rounding (the reference sums in double): ~√K·2⁻²⁴ relative,
    // as for fp32. 1e-5 also covers tensor cores that truncate rather than round inside an mma.
    private const double GemmBf16Tol = 1e-5;

    static partial void AddGemm(List<KernelCheck> list)
    {
        (int M, int N, int K)[] sizes = [(1, 1, 1), (7, 13, 5), (37, 53, 29), (129, 67, 257), (259, 261, 67)];
        (bool TA, bool TB, string Name)[] layouts = [(false, false, "nn"), (false, true, "nt"), (true, false, "tn"), (true, true, "tt")];

        foreach (bool bf16 in new[] { false, true })
        {
            string f = bf16 ? "bf16" : "f32";
            foreach (var (ta, tb, lay) in layouts)
            {
                foreach (var (m, n, k) in sizes)
                    list.Add(new KernelCheck($"gemm/{f}/{lay}/{m}x{n}x{k}", ctx =>
                        CheckGemm(ctx, bf16, new GemmCase(1, ta, tb, m, n, k, 1f, 0f))));
                // Batched, the first operand broadcast (stride 0), alpha ≠ 1, beta ≠ 0, every leading dimension
                // larger than its minimum and gaps between the batch items (left untouched).
                list.Add(new KernelCheck($"gemm/{f}/{lay}/batch3-broadcast-a", ctx =>
                    CheckGemm(ctx, bf16, new GemmCase(3, ta, tb, 37, 45, 23, -0.75f, 0.5f, PadA: 3, PadB: 5, PadC: 2, Gap: 7, BroadcastA: true))));
                // The second operand broadcast, beta = 0 over a NaN-filled C.
                list.Add(new KernelCheck($"gemm/{f}/{lay}/batch3-broadcast-b", ctx =>
                    CheckGemm(ctx, bf16, new GemmCase(3, ta, tb, 70, 33, 41, 1.5f, 0f, PadA: 1, PadB: 2, PadC: 9, Gap: 3, BroadcastB: true))));
                // Leading dimensions and strides that allow the kernels' 16-byte loads and stores, with partial tiles
                // at every edge (vector interior, scalar fallback at the borders) and more than one tile each way.
                list.Add(new KernelCheck($"gemm/{f}/{lay}/aligned-batch2-132x140x72", ctx =>
                    CheckGemm(ctx, bf16, new GemmCase(2, ta, tb, 132, 140, 72, 1f, -1f, PadA: 8, PadB: 16, PadC: 4, Gap: 64, AlignLd: 8))));
            }
            // K = 0: C = beta · C (and 0 for beta = 0).
            list.Add(new KernelCheck($"gemm/{f}/nn/5x7x0", ctx =>
            {
                CheckGemm(ctx, bf16, new GemmCase(1, false, false, 5, 7, 0, 1f, 0.25f));
                CheckGemm(ctx, bf16, new GemmCase(1, false, false, 5, 7, 0, 1f, 0f));
            }));
        }

        // Grouped GEMM as the MoE layer issues it: forward x·Wᵀ (nt), input gradient dy·W (nn, also accumulating
        // with beta = 1), weight gradient dyᵀ·x (tn); rows per item from 0 (skipped) to more than a 128-row tile,
        // depths from 0 upwards.
        int[] ms = [0, 1, 5, 33, 64, 0, 130, 17, 2];
        int[] ks = [16, 29, 64, 7, 128, 3, 67, 1, 0];
        list.Add(new KernelCheck("gemm/grouped/nt/9-items-n48", ctx => CheckGrouped(ctx, false, true, ms, ks, 48, 1f, 0f, 3)));
        list.Add(new KernelCheck("gemm/grouped/nn/9-items-n70", ctx => CheckGrouped(ctx, false, false, ms, ks, 70, 1f, 0f, 0)));
        list.Add(new KernelCheck("gemm/grouped/nn/9-items-n70-beta1", ctx => CheckGrouped(ctx, false, false, ms, ks, 70, 1f, 1f, 5)));
        list.Add(new KernelCheck("gemm/grouped/tn/9-items-n40", ctx => CheckGrouped(ctx, true, false, ks, ms, 40, 1f, 0f, 2)));
        // Large rows per item and 16-byte aligned leading dimensions (the vector loads, and the large tile where
        // the device has few SMs: the emulator).
        list.Add(new KernelCheck("gemm/grouped/nt/4-items-n160-aligned", ctx =>
            CheckGrouped(ctx, false, true, [130, 256, 0, 200], [40, 72, 8, 24], 160, -0.5f, 0f, 8)));
    }

    /// <summary>One GEMM call: shapes, scalars, and how the operands are laid out in memory.</summary>
    private readonly record struct GemmCase(int Batch, bool TA, bool TB, int M, int N, int K, float Alpha, float Beta,
        int PadA = 0, int PadB = 0, int PadC = 0, int Gap = 0, bool BroadcastA = false, bool BroadcastB = false, int AlignLd = 1);

    /// <summary>
    /// Random A, B (bf16-rounded for the bf16 op) and C (NaN when beta = 0: it must not be read), the op on the
    /// backend and on the reference, and the whole C buffer compared, padding and gaps included (they must stay).
    /// </summary>
    private static void CheckGemm(KernelCheckContext ctx, bool bf16, GemmCase g)
    {
        int aRows = g.TA ? g.K : g.M, aCols = g.TA ? g.M : g.K;
        int bRows = g.TB ? g.N : g.K, bCols = g.TB ? g.K : g.N;
        int lda = RoundUp(Math.Max(aCols, 1) + g.PadA, g.AlignLd), ldb = RoundUp(Math.Max(bCols, 1) + g.PadB, g.AlignLd);
        int ldc = RoundUp(g.N + g.PadC, g.AlignLd);
        long sA = g.BroadcastA ? 0 : (long)aRows * lda + g.Gap;
        long sB = g.BroadcastB ? 0 : (long)bRows * ldb + g.Gap;
        long sC = (long)g.M * ldc + g.Gap;
        long nA = Math.Max(1, (g.Batch - 1) * sA + (long)aRows * lda);
        long nB = Math.Max(1, (g.Batch - 1) * sB + (long)bRows * ldb);
        long nC = (g.Batch - 1) * sC + (long)g.M * ldc;

        var a = ctx.Rand(nA);
        var b = ctx.Rand(nB);
        var c = g.Beta == 0f ? NaNs(nC) : ctx.Rand(nC);
        var expected = (float[])c.Clone();
        float* dc = ctx.Up(c);
        string what = $"C of {g.Batch}×({g.M}×{g.K})·({g.K}×{g.N})";
        if (bf16)
        {
            var ab = ToBf16(a);
            var bb = ToBf16(b);
            ctx.K.GemmBf16(g.Batch, g.TA, g.TB, g.M, g.N, g.K, g.Alpha, ctx.Up(ab), lda, sA, ctx.Up(bb), ldb, sB, g.Beta, dc, ldc, sC);
            fixed (ushort* pa = ab) fixed (ushort* pb = bb) fixed (float* pc = expected)
                ctx.Ref.GemmBf16(g.Batch, g.TA, g.TB, g.M, g.N, g.K, g.Alpha, pa, lda, sA, pb, ldb, sB, g.Beta, pc, ldc, sC);
            ctx.Close(ctx.Down(dc, nC), expected, GemmBf16Tol, what);
        }
        else
        {
            ctx.K.Gemm(g.Batch, g.TA, g.TB, g.M, g.N, g.K, g.Alpha, ctx.Up(a), lda, sA, ctx.Up(b), ldb, sB, g.Beta, dc, ldc, sC);
            fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = expected)
                ctx.Ref.Gemm(g.Batch, g.TA, g.TB, g.M, g.N, g.K, g.Alpha, pa, lda, sA, pb, ldb, sB, g.Beta, pc, ldc, sC);
            ctx.Close(ctx.Down(dc, nC), expected, GemmF32Tol, what);
        }
    }

    /// <summary>
    /// count = ms.Length items, item i: op(A_i) ms[i]×ks[i], op(B_i) ks[i]×N, each operand in its own buffer, shared
    /// leading dimensions (the largest item's plus pad). Every C_i is compared, those of skipped items included.
    /// </summary>
    private static void CheckGrouped(KernelCheckContext ctx, bool ta, bool tb, int[] ms, int[] ks, int N, float alpha, float beta, int pad)
    {
        int count = ms.Length, maxM = Math.Max(1, ms.Max()), maxK = Math.Max(1, ks.Max());
        int lda = (ta ? maxM : maxK) + pad, ldb = (tb ? maxK : N) + pad, ldc = N + pad;
        var a = new float[count][];
        var b = new float[count][];
        var c = new float[count][];
        var expected = new float[count][];
        var dA = new IntPtr[count];
        var dB = new IntPtr[count];
        var dC = new IntPtr[count];
        for (int i = 0; i < count; i++)
        {
            int aRows = ta ? ks[i] : ms[i], bRows = tb ? N : ks[i];
            a[i] = ctx.Rand(Math.Max(1, (long)aRows * lda));
            b[i] = ctx.Rand(Math.Max(1, (long)bRows * ldb));
            c[i] = beta == 0f ? NaNs(Math.Max(1, (long)ms[i] * ldc)) : ctx.Rand(Math.Max(1, (long)ms[i] * ldc));
            expected[i] = (float[])c[i].Clone();
            dA[i] = (IntPtr)ctx.Up(a[i]);
            dB[i] = (IntPtr)ctx.Up(b[i]);
            dC[i] = (IntPtr)ctx.Up(c[i]);
        }
        fixed (int* pm = ms) fixed (int* pk = ks) fixed (IntPtr* pa = dA) fixed (IntPtr* pb = dB) fixed (IntPtr* pc = dC)
            ctx.K.GemmGrouped(count, ta, tb, pm, N, pk, alpha, (float**)pa, lda, (float**)pb, ldb, beta, (float**)pc, ldc);

        // The reference on pinned host copies.
        var pins = new List<GCHandle>();
        try
        {
            var hA = new IntPtr[count];
            var hB = new IntPtr[count];
            var hC = new IntPtr[count];
            for (int i = 0; i < count; i++)
            {
                hA[i] = Pin(a[i], pins);
                hB[i] = Pin(b[i], pins);
                hC[i] = Pin(expected[i], pins);
            }
            fixed (int* pm = ms) fixed (int* pk = ks) fixed (IntPtr* pa = hA) fixed (IntPtr* pb = hB) fixed (IntPtr* pc = hC)
                ctx.Ref.GemmGrouped(count, ta, tb, pm, N, pk, alpha, (float**)pa, lda, (float**)pb, ldb, beta, (float**)pc, ldc);
        }
        finally
        {
            foreach (var h in pins) h.Free();
        }
        for (int i = 0; i < count; i++)
            ctx.Close(ctx.Down((float*)dC[i], c[i].Length), expected[i], GemmF32Tol, $"C[{i}] ({ms[i]}×{ks[i]})·({ks[i]}×{N})");
    }

    private static int RoundUp(int x, int m) => (x + m - 1) / m * m;

    private static IntPtr Pin(float[] a, List<GCHandle> pins)
    {
        var h = GCHandle.Alloc(a, GCHandleType.Pinned);
        pins.Add(h);
        return h.AddrOfPinnedObject();
    }

    private static float[] NaNs(long n)
    {
        var a = new float[n];
        Array.Fill(a, float.NaN);
        return a;
    }

    private static ushort[] ToBf16(float[] x)
    {
        var r = new ushort[x.Length];
        fixed (float* p = x) fixed (ushort* q = r) Reference.ReferenceKernels.Instance.FloatToBFloat16(p, q, x.Length);
        return r;
    }
}
