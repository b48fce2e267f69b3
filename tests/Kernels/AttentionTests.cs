using NativeReasoner.Kernels.Cpu;
using NativeReasoner.Kernels.Reference;
using Xunit;

namespace NativeReasoner.Tests.Kernels;

public sealed unsafe class AttentionTests
{
    private sealed class Case
    {
        public required int BH, Tq, Tk, Dk, Dv;
        public required bool Causal;
        /// <summary>Query heads per K/V head: K/V have BH / Group rows.</summary>
        public int Group = 1;
        public float[] Q = [], K = [], V = [], DO = [];
        public float Scale;

        public static Case Make(int BH, int Tq, int Tk, int Dk, int Dv, bool causal, int seed = 3, int group = 1)
        {
            var rng = new Random(seed + 1000 * Tq + 10 * Tk + Dk + 7 * Dv);
            int kvRows = BH / group;
            return new Case
            {
                BH = BH, Tq = Tq, Tk = Tk, Dk = Dk, Dv = Dv, Causal = causal, Group = group,
                // Spread wide enough that the softmax is far from uniform.
                Q = GemmAttentionTestUtil.Random(rng, (long)BH * Tq * Dk, 2f),
                K = GemmAttentionTestUtil.Random(rng, (long)kvRows * Tk * Dk, 2f),
                V = GemmAttentionTestUtil.Random(rng, (long)kvRows * Tk * Dv),
                DO = GemmAttentionTestUtil.Random(rng, (long)BH * Tq * Dv),
                Scale = 1f / MathF.Sqrt(Dk),
            };
        }

        public (float[] O, float[] Lse) Forward(NativeReasoner.Kernels.IKernels kernels)
        {
            var o = Enumerable.Repeat(float.NaN, BH * Tq * Dv).ToArray();
            var lse = Enumerable.Repeat(float.NaN, BH * Tq).ToArray();
            fixed (float* q = Q, k = K, v = V, po = o, pl = lse)
                kernels.AttentionForward(q, k, v, po, pl, BH, Tq, Tk, Dk, Dv, Scale, Causal, Group);
            return (o, lse);
        }

        public (float[] Dq, float[] Dk, float[] Dv) Backward(NativeReasoner.Kernels.IKernels kernels, float[] o, float[] lse)
        {
            var dq = Enumerable.Repeat(float.NaN, BH * Tq * Dk).ToArray();
            var dk = Enumerable.Repeat(float.NaN, BH / Group * Tk * Dk).ToArray();
            var dv = Enumerable.Repeat(float.NaN, BH / Group * Tk * Dv).ToArray();
            fixed (float* q = Q, k = K, v = V, po = o, pl = lse, pdo = DO, pdq = dq, pdk = dk, pdv = dv)
                kernels.AttentionBackward(q, k, v, po, pl, pdo, pdq, pdk, pdv, BH, Tq, Tk, Dk, Dv, Scale, Causal,
                    Group);
            return (dq, dk, dv);
        }
    }

    public static IEnumerable<object[]> Shapes() => new[]
    {
        // BH, Tq, Tk, Dk, Dv
        new object[] { 1, 1, 1, 8, 8 },
        new object[] { 2, 1, 37, 16, 16 },     // decode step: one query sees the whole cache
        new object[] { 3, 13, 13, 24, 16 },    // Dk ≠ Dv
        new object[] { 2, 7, 29, 5, 3 },       // Tq < Tk, odd head dims
        new object[] { 1, 67, 67, 32, 32 },    // just over one tile
        new object[] { 2, 131, 197, 40, 24 },  // several tiles each way, ragged
        new object[] { 1, 64, 64, 64, 64 },    // exactly one tile
        // BH ≥ 2 × threads: the one-pass-per-head backward (the rows above take the split dq | dk,dv passes)
        new object[] { 5, 70, 70, 16, 16 },
        new object[] { 4, 13, 83, 8, 12 },     // Tq < Tk, Dk ≠ Dv
        new object[] { 4, 67, 131, 24, 40 },   // Dv > Dk, several key tiles
    };

    [Theory]
    [InlineData(2)]
    [InlineData(4)] // BH ≥ 2 × threads: the one-pass-per-head backward
    public void CausalWithMoreQueriesThanKeysGivesZerosForBlindQueries(int BH)
    {
        // Bottom-right alignment: with Tq = 5, Tk = 3 the first two queries see no key at all.
        var c = Case.Make(BH, 5, 3, 8, 4, causal: true);
        var (oRef, lseRef) = c.Forward(ReferenceKernels.Instance);
        var (o, lse) = c.Forward(CpuKernels.Instance);
        for (int bh = 0; bh < BH; bh++)
            for (int i = 0; i < 2; i++)
            {
                Assert.Equal(float.NegativeInfinity, lse[bh * 5 + i]);
                Assert.Equal(float.NegativeInfinity, lseRef[bh * 5 + i]);
                for (int d = 0; d < 4; d++) Assert.Equal(0f, o[(bh * 5 + i) * 4 + d]);
            }
        GemmAttentionTestUtil.AssertClose(oRef, o, 1e-4, "o");
        GemmAttentionTestUtil.AssertClose(lseRef, lse, 1e-4, "lse", i => i % 5 >= 2);
        var (dqRef, dkRef, dvRef) = c.Backward(ReferenceKernels.Instance, oRef, lseRef);
        var (dq, dk, dv) = c.Backward(CpuKernels.Instance, oRef, lseRef);
        GemmAttentionTestUtil.AssertClose(dqRef, dq, 1e-4, "dq");
        GemmAttentionTestUtil.AssertClose(dkRef, dk, 1e-4, "dk");
        GemmAttentionTestUtil.AssertClose(dvRef, dv, 1e-4, "dv");
    }

    /// <summary>
    /// Grouped K/V heads on the CPU backend through both backward strategies: K/V heads ≥ 2 × threads takes the
    /// one-pass-per-K/V-head backward, a single K/V head (MQA) the split dq | dk,dv passes. Group sizes 2, 3, 7;
    /// the conformance suite (attention/gqa/*) covers the other shapes on every backend.
    /// </summary>
    [Theory]
    [InlineData(2, 37, 37, 16, 16)]
    [InlineData(3, 13, 83, 8, 12)]
    [InlineData(7, 70, 70, 24, 16)]
    public void GroupedKvHeadsMatchReferenceOnBothBackwardPaths(int group, int Tq, int Tk, int Dk, int Dv)
    {
        foreach (int kvRows in new[] { 2 * CpuParallel.Threads, 1 })
            foreach (bool causal in new[] { false, true })
            {
                var c = Case.Make(kvRows * group, Tq, Tk, Dk, Dv, causal, group: group);
                string what = $"kvRows={kvRows} group={group} causal={causal}";
                var (oRef, lseRef) = c.Forward(ReferenceKernels.Instance);
                var (o, lse) = c.Forward(CpuKernels.Instance);
                GemmAttentionTestUtil.AssertClose(oRef, o, 1e-4, "o " + what);
                GemmAttentionTestUtil.AssertClose(lseRef, lse, 1e-4, "lse " + what);
                var (dqRef, dkRef, dvRef) = c.Backward(ReferenceKernels.Instance, oRef, lseRef);
                var (dq, dk, dv) = c.Backward(CpuKernels.Instance, oRef, lseRef);
                GemmAttentionTestUtil.AssertClose(dqRef, dq, 1e-4, "dq " + what);
                GemmAttentionTestUtil.AssertClose(dkRef, dk, 1e-4, "dk " + what);
                GemmAttentionTestUtil.AssertClose(dvRef, dv, 1e-4, "dv " + what);
            }
    }

    /// <summary>
    /// Verifies the oracle itself: the reference backward against central finite differences of
    /// L = Σ o ⊙ dO through the reference forward, on a tiny case, causal and not, Tq &lt; Tk, Dk ≠ Dv.
    /// </summary>
    [Fact]
    public void ReferenceBackwardMatchesFiniteDifferences()
    {
        foreach (bool causal in new[] { false, true })
        {
            var c = Case.Make(2, 3, 4, 3, 2, causal, seed: 11);
            var (o, lse) = c.Forward(ReferenceKernels.Instance);
            var (dq, dk, dv) = c.Backward(ReferenceKernels.Instance, o, lse);
            CheckFd(c, c.Q, dq, $"dq causal={causal}");
            CheckFd(c, c.K, dk, $"dk causal={causal}");
            CheckFd(c, c.V, dv, $"dv causal={causal}");
        }
    }

    private static void CheckFd(Case c, float[] param, float[] analytic, string what)
    {
        const float eps = 2e-3f;
        var numeric = new float[param.Length];
        for (int i = 0; i < param.Length; i++)
        {
            float keep = param[i];
            param[i] = keep + eps;
            double lp = Loss(c);
            param[i] = keep - eps;
            double lm = Loss(c);
            param[i] = keep;
            // Divide by the actual float step (keep ± eps is rounded).
            numeric[i] = (float)((lp - lm) / ((double)(keep + eps) - (keep - eps)));
        }
        GemmAttentionTestUtil.AssertClose(numeric, analytic, 2e-3, what);
    }

    private static double Loss(Case c)
    {
        var (o, _) = c.Forward(ReferenceKernels.Instance);
        double l = 0;
        for (int i = 0; i < o.Length; i++) l += (double)o[i] * c.DO[i];
        return l;
    }
}
