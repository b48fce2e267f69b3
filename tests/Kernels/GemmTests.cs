using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using NativeReasoner.Kernels.Cpu;
using NativeReasoner.Kernels.Cpu.Gemm;
using NativeReasoner.Kernels.Reference;
using Xunit;

namespace NativeReasoner.Tests.Kernels;

/// <summary>Shared helpers of the GEMM and attention tests: random inputs and the relative-error check.</summary>
internal static class GemmAttentionTestUtil
{
    public static float[] Random(Random rng, long n, float scale = 1f)
    {
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return a;
    }

    /// <summary>‖out − ref‖ / ‖ref‖ over the given indices; NaN anywhere in out never passes.</summary>
    public static void AssertClose(float[] expected, float[] actual, double tol, string what, Func<long, bool>? include = null)
    {
        double diff = 0, norm = 0;
        for (long i = 0; i < expected.Length; i++)
        {
            if (include != null && !include(i)) continue;
            Assert.False(float.IsNaN(actual[i]), $"{what}: NaN at {i}");
            double d = (double)actual[i] - expected[i];
            diff += d * d;
            norm += (double)expected[i] * expected[i];
        }
        double rel = norm == 0 ? Math.Sqrt(diff) : Math.Sqrt(diff / norm);
        Assert.True(rel <= tol, $"{what}: relative error {rel:E3} > {tol:E1}");
    }
}

public sealed unsafe class GemmTests
{
    /// <summary>
    /// Runs one GEMM case on the CPU backend (and, with <paramref name="isa"/>, on a forced micro-kernel family)
    /// and on the reference. pad* widen the leading dimensions; a broadcast operand gets stride 0.
    /// </summary>
    private static void Check(int batch, bool tA, bool tB, int M, int N, int K, float alpha, float beta,
        int padA = 0, int padB = 0, int padC = 0, bool broadcastA = false, bool broadcastB = false,
        bool nanC = false, GemmIsa? isa = null, int seed = 1, GemmConfig? config = null)
    {
        var rng = new Random(seed * 7919 + M * 31 + N * 17 + K);
        int lda = (tA ? M : K) + padA, ldb = (tB ? K : N) + padB, ldc = N + padC;
        long aItem = (long)(tA ? K : M) * lda, bItem = (long)(tB ? N : K) * ldb, cItem = (long)M * ldc;
        long strideA = broadcastA ? 0 : aItem, strideB = broadcastB ? 0 : bItem;
        var a = GemmAttentionTestUtil.Random(rng, Math.Max(1, broadcastA ? aItem : aItem * batch));
        var b = GemmAttentionTestUtil.Random(rng, Math.Max(1, broadcastB ? bItem : bItem * batch));
        var c0 = nanC ? Enumerable.Repeat(float.NaN, (int)(cItem * batch)).ToArray() : GemmAttentionTestUtil.Random(rng, cItem * batch);
        var expected = (float[])c0.Clone();
        var actual = (float[])c0.Clone();
        fixed (float* pa = a, pb = b, pe = expected, pc = actual)
        {
            ReferenceKernels.Instance.Gemm(batch, tA, tB, M, N, K, alpha, pa, lda, strideA, pb, ldb, strideB, beta, pe, ldc, cItem);
            if (config != null)
                Sgemm.Run(config, batch, tA, tB, M, N, K, alpha, pa, lda, strideA, pb, ldb, strideB, beta, pc, ldc, cItem);
            else if (isa is { } forced)
                Sgemm.Run(GemmConfig.ForIsa(forced), batch, tA, tB, M, N, K, alpha, pa, lda, strideA, pb, ldb, strideB, beta, pc, ldc, cItem);
            else
                CpuKernels.Instance.Gemm(batch, tA, tB, M, N, K, alpha, pa, lda, strideA, pb, ldb, strideB, beta, pc, ldc, cItem);
        }
        string what = $"gemm b={batch} tA={tA} tB={tB} {M}x{N}x{K} α={alpha} β={beta} isa={isa}";
        // Inside the matrices: close to the reference. Padding columns: untouched (bit for bit, NaN included).
        GemmAttentionTestUtil.AssertClose(expected, actual, 1e-4, what, i => i % ldc < N);
        for (long i = 0; i < actual.Length; i++)
            if (i % ldc >= N) Assert.Equal(BitConverter.SingleToInt32Bits(c0[i]), BitConverter.SingleToInt32Bits(actual[i]));
    }

    public static IEnumerable<object[]> Shapes() => new[]
    {
        new object[] { 1, 1, 1 }, new object[] { 7, 13, 5 }, new object[] { 31, 127, 17 }, new object[] { 129, 67, 257 },
        new object[] { 1, 300, 200 }, new object[] { 200, 1, 300 }, new object[] { 64, 64, 64 }, new object[] { 33, 65, 1 },
        // Skinny paths (M or N ≤ 4) with more than one column/row chunk.
        new object[] { 1, 1100, 300 }, new object[] { 3, 700, 129 }, new object[] { 1100, 1, 300 }, new object[] { 600, 4, 77 },
        // The register-blocked thin kernels: 64-, 16-wide and scalar column tails, 4-column dot blocks with a
        // column remainder, K below, at and past one vector, chunks that end mid-block.
        new object[] { 4, 70, 33 }, new object[] { 2, 17, 16 }, new object[] { 4, 1030, 64 }, new object[] { 3, 6, 15 },
        new object[] { 600, 3, 47 }, new object[] { 37, 2, 16 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void AllTransposeCombinations(int M, int N, int K)
    {
        foreach (bool tA in new[] { false, true })
            foreach (bool tB in new[] { false, true })
                Check(1, tA, tB, M, N, K, 1f, 0f);
    }

    [Fact]
    public void BiggerThanTheBlocks()
    {
        // Two transposition cases only: the reference needs ~0.1 G multiply-adds per run.
        Check(1, false, false, 300, 520, 700, 1f, 0f);
        Check(1, true, true, 300, 520, 700, 0.5f, 1f);
    }

    [Fact]
    public void SmallCacheBlocksCoverEveryLoop()
    {
        // Caches of 8 KiB / 64 KiB give KC = 64, MC = 64, NC = 128 (AVX-512) or a few times smaller blocks
        // (AVX2), so a modest problem runs several K, M and N blocks with ragged last blocks in each.
        foreach (var isa in new[] { GemmConfig.BestIsa(), GemmIsa.Scalar })
        {
            var cfg = new GemmConfig(isa, 8 << 10, 64 << 10);
            Check(1, false, false, 150, 290, 333, 1f, 0f, config: cfg);
            Check(2, true, true, 131, 301, 200, 0.5f, 1f, padA: 3, config: cfg);
        }
    }

    [Fact]
    public void AlphaBetaVariants()
    {
        foreach (var (alpha, beta) in new[] { (1f, 1f), (0.5f, -2f), (-1.25f, 0f), (2f, 0.5f), (0f, 1.5f) })
        {
            Check(1, false, false, 37, 70, 45, alpha, beta);
            Check(1, true, true, 150, 97, 260, alpha, beta);
            Check(2, false, true, 2, 600, 90, alpha, beta, padC: 3);
            Check(2, true, false, 530, 3, 90, alpha, beta, padC: 3);
            Check(2, false, true, 4, 37, 48, alpha, beta, padC: 3);
        }
    }

    [Fact]
    public void BetaZeroIgnoresNaNInC()
    {
        Check(1, false, false, 5, 6, 7, 1f, 0f, nanC: true);
        Check(1, false, true, 70, 90, 130, 0.75f, 0f, nanC: true, padC: 3);
        Check(1, true, false, 129, 67, 257, 1f, 0f, nanC: true);
        Check(1, false, false, 1, 900, 50, 1f, 0f, nanC: true, padC: 1);   // skinny M
        Check(1, true, true, 900, 2, 50, 1f, 0f, nanC: true, padC: 1);     // skinny N
        Check(2, false, false, 4, 5, 0, 1f, 0f, nanC: true);              // K = 0: C = 0 exactly
        Check(1, false, true, 3, 70, 64, 0.75f, 0f, nanC: true, padC: 3);  // thin dots, K a multiple of 16 (4 sums at once)
    }

    [Fact]
    public void PackedBFullSliversWithPaddedRows()
    {
        // op(B) stored K×N: full 32-column slivers take the vector copy, a ragged last sliver the scalar one;
        // padded ldb, a K past one block (small caches), beta 0 and 1.
        var cfg = new GemmConfig(GemmConfig.BestIsa(), 8 << 10, 64 << 10);
        Check(1, false, false, 70, 96, 140, 1f, 0f, padB: 5, config: cfg);
        Check(1, true, false, 45, 65, 77, 0.5f, 1f, padB: 3, padC: 1, config: cfg);
        Check(1, false, false, 64, 32, 128, 1f, 0f);
    }

    [Fact]
    public void LeadingDimensionsWiderThanRows()
    {
        foreach (bool tA in new[] { false, true })
            foreach (bool tB in new[] { false, true })
            {
                Check(1, tA, tB, 9, 11, 6, 1f, 0.5f, padA: 3, padB: 5, padC: 7);
                Check(1, tA, tB, 100, 90, 80, 1.5f, 1f, padA: 1, padB: 33, padC: 2);
            }
    }

    [Fact]
    public void BatchedWithStridesAndBroadcast()
    {
        Check(3, false, false, 17, 19, 23, 1f, 0f);
        Check(4, true, false, 64, 48, 96, 1f, 1f, broadcastA: true);
        Check(5, false, true, 40, 70, 33, 0.5f, 0f, broadcastB: true, padC: 1);
        Check(2, true, true, 130, 40, 70, 1f, -1f, padA: 2, padB: 1);
        Check(16, false, false, 8, 8, 8, 1f, 0f, broadcastB: true); // many tiny items: direct path, parallel over batch
    }

    [Fact]
    public void LargerThanCacheBlocks()
    {
        var cfg = GemmConfig.Current;
        // Crosses KC, MC and NC boundaries with ragged remainders.
        Check(1, false, false, cfg.MC + 13, 70, cfg.KC * 2 + 5, 1f, 0.25f);
        Check(1, true, false, 50, cfg.NC + 40, cfg.KC + 1, 1f, 0f);
    }

    [Fact]
    public void FallbackKernels()
    {
        var isas = new List<GemmIsa> { GemmIsa.Scalar };
        if (Vector256.IsHardwareAccelerated && Fma.IsSupported) isas.Add(GemmIsa.Avx2);
        foreach (var isa in isas)
            foreach (bool tA in new[] { false, true })
                foreach (bool tB in new[] { false, true })
                {
                    Check(1, tA, tB, 61, 45, 70, 1f, 0.5f, isa: isa);
                    Check(2, tA, tB, 33, 130, 200, -1f, 0f, padC: 2, nanC: true, isa: isa);
                }
    }
}
