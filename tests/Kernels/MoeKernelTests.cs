using Xunit;
using static NativeReasoner.Tests.Kernels.KernelTestUtil;

namespace NativeReasoner.Tests.Kernels;

/// <summary>
/// The MoE kernels: CPU against the reference at awkward sizes (n = 1, odd, prime; E = 16 in one group and
/// 256 in 8 groups keeping 4; k = 8; ties; NaN; experts with no tokens), and the reference by hand.
/// </summary>
public unsafe class MoeKernelTests
{
    /// <summary>(n, E, groups, topkGroups, k, useBias, ties): the router cases shared with the ILGPU tests.</summary>
    public static readonly (int N, int E, int Groups, int Keep, int K, bool Bias, bool Ties)[] RouteCases =
    [
        (1, 16, 1, 1, 8, true, false),
        (7, 16, 1, 1, 8, false, true),
        (13, 256, 8, 4, 8, true, false),
        (31, 256, 8, 4, 8, true, true),
        (1, 256, 8, 4, 8, false, false),
        (127, 64, 4, 2, 6, true, true),
        (2, 6, 2, 1, 2, true, false),
        (257, 256, 8, 4, 8, true, false),
    ];

    /// <summary>Sigmoid-like scores in (0, 1); with ties, a few distinct values (and equal biases) so ties abound; a NaN in some rows.</summary>
    public static (float[] Scores, float[] Bias) RouteInputs(int seed, int n, int e, bool ties)
    {
        var rng = new Random(seed);
        var s = new float[n * e];
        for (int i = 0; i < s.Length; i++) s[i] = ties ? rng.Next(4) * 0.25f : (float)rng.NextDouble();
        var bias = new float[e];
        for (int i = 0; i < e; i++) bias[i] = ties ? (i % 3) * 0.125f : 0.2f * (float)(rng.NextDouble() - 0.5);
        // A NaN score (never from a sigmoid, but the order must still agree) in every fifth row.
        for (int t = 0; t < n; t += 5) s[t * e + rng.Next(e)] = float.NaN;
        return (s, bias);
    }

    [Fact]
    public void MoeRoute_CpuMatchesReference()
    {
        int seed = 0;
        foreach (var c in RouteCases)
        {
            var (s, bias) = RouteInputs(++seed, c.N, c.E, c.Ties);
            foreach (bool normalize in new[] { true, false })
            {
                var selR = new float[c.N * c.E]; var selC = new float[selR.Length];
                var idxR = new int[c.N * c.K]; var idxC = new int[idxR.Length];
                var wR = new float[idxR.Length]; var wC = new float[idxR.Length];
                fixed (float* ps = s, pb = bias, psr = selR, psc = selC, pwr = wR, pwc = wC)
                fixed (int* pir = idxR, pic = idxC)
                {
                    Ref.MoeRoute(ps, pb, c.N, c.E, c.Groups, c.Keep, c.K, c.Bias, psr, pir, pwr, normalize, 2.5f);
                    Cpu.MoeRoute(ps, pb, c.N, c.E, c.Groups, c.Keep, c.K, c.Bias, psc, pic, pwc, normalize, 2.5f);
                }
                string what = $"route {c} normalize={normalize}";
                AssertExact<int>(idxC, idxR, what + " indices");
                AssertExact<float>(selC, selR, what + " selection");
                AssertClose(wC, wR, 1e-5, what + " weights");
                // Each row's experts are distinct.
                for (int t = 0; t < c.N; t++) Assert.Equal(c.K, idxR.AsSpan(t * c.K, c.K).ToArray().Distinct().Count());
            }
        }
    }

    [Fact]
    public void MoeRoute_Reference_HandValues()
    {
        // 2 groups of 3, keep 1, top-2 (deepseek-v3-notes 4: the dropped group is −∞, not 0).
        // selection = s + b = [−0.4, −0.3, −0.2, −0.85, −0.85, −0.85]; group scores: −0.5 vs −1.7 → group 0;
        // top-2: expert 2 (−0.2), expert 1 (−0.3); weights from the unbiased s: 0.3/0.5, 0.2/0.5, × 2.5.
        float[] s = [0.1f, 0.2f, 0.3f, 0.05f, 0.05f, 0.05f];
        float[] b = [-0.5f, -0.5f, -0.5f, -0.9f, -0.9f, -0.9f];
        var sel = new float[6]; var idx = new int[2]; var w = new float[2];
        fixed (float* ps = s, pb = b, psel = sel, pw = w)
        fixed (int* pi = idx)
            Ref.MoeRoute(ps, pb, 1, 6, 2, 1, 2, true, psel, pi, pw, true, 2.5f);
        Assert.Equal([2, 1], idx);
        Assert.Equal(1.5f, w[0], 5);
        Assert.Equal(1.0f, w[1], 5);
        Assert.Equal(-0.4f, sel[0], 6);
        Assert.True(float.IsNegativeInfinity(sel[3]) && float.IsNegativeInfinity(sel[5]));

        // Ties: four equal scores, one group → the lowest indices, equal weights; no normalisation → s · scale.
        float[] eq = [0.5f, 0.5f, 0.5f, 0.5f];
        var sel2 = new float[4]; var idx2 = new int[2]; var w2 = new float[2];
        fixed (float* ps = eq, psel = sel2, pw = w2)
        fixed (int* pi = idx2)
            Ref.MoeRoute(ps, null, 1, 4, 1, 1, 2, false, psel, pi, pw, false, 3f);
        Assert.Equal([0, 1], idx2);
        Assert.Equal([1.5f, 1.5f], w2);
    }

    [Fact]
    public void MoePermute_Reference_HandValues()
    {
        // indices [[2, 0], [0, 1], [2, 0]]: expert 0 has slots 1, 2, 5; expert 1 slot 3; expert 2 slots 0, 4; expert 3 none.
        int[] indices = [2, 0, 0, 1, 2, 0];
        var offsets = new int[5]; var order = new int[6]; var position = new int[6];
        fixed (int* pi = indices, po = offsets, pord = order, ppos = position)
            Ref.MoePermute(pi, 3, 2, 4, po, pord, ppos);
        Assert.Equal([0, 3, 4, 6, 6], offsets);
        Assert.Equal([1, 2, 5, 3, 0, 4], order);
        Assert.Equal([4, 0, 1, 3, 5, 2], position);
    }

    /// <summary>(n, k, E, id range): the last ones leave experts empty (ids only in [0, range)).</summary>
    public static readonly (int N, int K, int E, int Range)[] PermuteCases =
        [(1, 1, 1, 1), (1, 8, 16, 16), (7, 8, 256, 256), (13, 8, 256, 100), (131, 6, 64, 7), (4099, 8, 256, 256), (1021, 2, 5, 3)];

    public static int[] PermuteInputs(int seed, int n, int k, int range)
    {
        var rng = new Random(seed);
        var idx = new int[n * k];
        for (int i = 0; i < idx.Length; i++) idx[i] = rng.Next(range);
        return idx;
    }

    [Fact]
    public void MoePermute_CpuMatchesReference()
    {
        int seed = 100;
        foreach (var c in PermuteCases)
        {
            var idx = PermuteInputs(++seed, c.N, c.K, c.Range);
            var oR = new int[c.E + 1]; var oC = new int[c.E + 1];
            var sR = new int[idx.Length]; var sC = new int[idx.Length];
            var pR = new int[idx.Length]; var pC = new int[idx.Length];
            fixed (int* pi = idx, por = oR, poc = oC, psr = sR, psc = sC, ppr = pR, ppc = pC)
            {
                Ref.MoePermute(pi, c.N, c.K, c.E, por, psr, ppr);
                Cpu.MoePermute(pi, c.N, c.K, c.E, poc, psc, ppc);
            }
            AssertExact<int>(oC, oR, $"offsets {c}");
            AssertExact<int>(sC, sR, $"order {c}");
            AssertExact<int>(pC, pR, $"position {c}");
            // Stable and sorted: experts ascending, slots ascending within an expert; position inverts order.
            for (int p = 1; p < sR.Length; p++)
                Assert.True(idx[sR[p - 1]] < idx[sR[p]] || (idx[sR[p - 1]] == idx[sR[p]] && sR[p - 1] < sR[p]));
            for (int p = 0; p < sR.Length; p++) Assert.Equal(p, pR[sR[p]]);
            if (c.Range < c.E) Assert.Equal(oR[c.Range], oR[c.E]); // the empty experts own nothing
        }
    }

    [Fact]
    public void MoePermute_RejectsOutOfRangeIds()
    {
        int[] idx = [0, 4];
        var o = new int[5]; var s = new int[2];
        Assert.Throws<ArgumentOutOfRangeException>(() => { fixed (int* pi = idx, po = o, ps = s) Ref.MoePermute(pi, 1, 2, 4, po, ps, null); });
        Assert.Throws<ArgumentOutOfRangeException>(() => { fixed (int* pi = idx, po = o, ps = s) Cpu.MoePermute(pi, 1, 2, 4, po, ps, null); });
    }

    [Fact]
    public void MoeDispatchCombine_CpuMatchesReference()
    {
        int seed = 200;
        foreach (var (n, k, d) in new[] { (1, 1, 1), (1, 8, 7), (13, 8, 31), (127, 6, 128), (257, 8, 13) })
        {
            var rng = new Random(++seed);
            var idx = PermuteInputs(seed, n, k, 16);
            var offsets = new int[17]; var order = new int[n * k]; var pos = new int[n * k];
            fixed (int* pi = idx, po = offsets, pord = order, ppos = pos) Ref.MoePermute(pi, n, k, 16, po, pord, ppos);
            var x = Uniform(rng, (long)n * d);
            var w = Uniform(rng, n * k, 0f, 1f);
            var src = Uniform(rng, (long)n * k * d);
            var dy = Uniform(rng, (long)n * d);
            foreach (bool weighted in new[] { false, true })
            {
                var dR = new float[n * k * d]; var dC = new float[dR.Length];
                var cR = new float[n * d]; var cC = new float[cR.Length];
                var gR = new float[n * k]; var gC = new float[gR.Length];
                fixed (float* px = x, pw = w, ps = src, pdy = dy, pdr = dR, pdc = dC, pcr = cR, pcc = cC, pgr = gR, pgc = gC)
                fixed (int* pp = pos)
                {
                    float* wp = weighted ? pw : null;
                    Ref.MoeDispatch(px, pp, wp, n, k, d, pdr);
                    Cpu.MoeDispatch(px, pp, wp, n, k, d, pdc);
                    Ref.MoeCombine(ps, pp, wp, n, k, d, pcr);
                    Cpu.MoeCombine(ps, pp, wp, n, k, d, pcc);
                    Ref.MoeCombineWeightGrad(pdy, ps, pp, n, k, d, pgr);
                    Cpu.MoeCombineWeightGrad(pdy, ps, pp, n, k, d, pgc);
                }
                string what = $"({n},{k},{d}) weighted={weighted}";
                AssertClose(dC, dR, 1e-6, "dispatch " + what);
                AssertClose(cC, cR, 1e-5, "combine " + what);
                AssertClose(gC, gR, 1e-5, "weight grad " + what);
                // Dispatch puts token t's row at each of its slots' sorted positions.
                for (int s = 0; s < n * k; s++)
                    Assert.Equal((weighted ? w[s] : 1f) * x[s / k * d], dR[pos[s] * d], 6);
            }
        }
    }

    [Fact]
    public void MoeCombine_IsTheAdjointOfDispatch()
    {
        // ⟨combine(src), y⟩ = ⟨src, dispatch(y)⟩ with the same weights: the backward of one is the other.
        int n = 11, k = 3, d = 5;
        var rng = new Random(7);
        var idx = PermuteInputs(8, n, k, 4);
        var offsets = new int[5]; var order = new int[n * k]; var pos = new int[n * k];
        fixed (int* pi = idx, po = offsets, pord = order, ppos = pos) Ref.MoePermute(pi, n, k, 4, po, pord, ppos);
        var w = Uniform(rng, n * k);
        var src = Uniform(rng, n * k * d);
        var y = Uniform(rng, n * d);
        var c = new float[n * d]; var dsp = new float[n * k * d];
        fixed (float* pw = w, ps = src, py = y, pc = c, pd = dsp)
        fixed (int* pp = pos)
        {
            Ref.MoeCombine(ps, pp, pw, n, k, d, pc);
            Ref.MoeDispatch(py, pp, pw, n, k, d, pd);
        }
        double lhs = 0, rhs = 0;
        for (int i = 0; i < c.Length; i++) lhs += (double)c[i] * y[i];
        for (int i = 0; i < dsp.Length; i++) rhs += (double)src[i] * dsp[i];
        Assert.Equal(lhs, rhs, 5);
    }

    /// <summary>
    /// Items of one grouped GEMM: (M, K) each, with thin items (M or K ≤ 8, including 0 and 1) and full ones.
    /// </summary>
    public static readonly (int M, int K)[] GroupedItems = [(1, 128), (0, 128), (3, 7), (64, 128), (9, 1), (1, 1), (8, 31), (33, 8), (5, 0)];

    /// <summary>Runs GemmGrouped on host arrays; A, B, C are per item.</summary>
    public static float[][] RunGrouped(NativeReasoner.Kernels.IKernels k, bool ta, bool tb, int n, float beta, float[][] a, float[][] b, float[][] c0, int lda, int ldb, int ldc)
    {
        int count = GroupedItems.Length;
        var c = c0.Select(x => (float[])x.Clone()).ToArray();
        var hs = new List<System.Runtime.InteropServices.GCHandle>();
        var ms = GroupedItems.Select(x => x.M).ToArray();
        var ks = GroupedItems.Select(x => x.K).ToArray();
        var pa = new nint[count]; var pb = new nint[count]; var pc = new nint[count];
        for (int i = 0; i < count; i++)
        {
            foreach (var (arr, dst) in new[] { (a[i], pa), (b[i], pb), (c[i], pc) })
            {
                var h = System.Runtime.InteropServices.GCHandle.Alloc(arr, System.Runtime.InteropServices.GCHandleType.Pinned);
                hs.Add(h);
                dst[i] = h.AddrOfPinnedObject();
            }
        }
        fixed (int* pm = ms, pk = ks)
        fixed (nint* ppa = pa, ppb = pb, ppc = pc)
            k.GemmGrouped(count, ta, tb, pm, n, pk, 0.75f, (float**)ppa, lda, (float**)ppb, ldb, beta, (float**)ppc, ldc);
        foreach (var h in hs) h.Free();
        return c;
    }

    /// <summary>Random operands for <see cref="GroupedItems"/> with padded leading dimensions.</summary>
    public static (float[][] A, float[][] B, float[][] C, int Lda, int Ldb, int Ldc) GroupedInputs(int seed, bool ta, bool tb, int n)
    {
        var rng = new Random(seed);
        int maxM = GroupedItems.Max(x => x.M), maxK = GroupedItems.Max(x => x.K);
        int lda = (ta ? maxM : maxK) + 3, ldb = (tb ? maxK : n) + 1, ldc = n + 2;
        var a = GroupedItems.Select(x => Uniform(rng, (long)lda * (ta ? Math.Max(1, x.K) : Math.Max(1, x.M)))).ToArray();
        var b = GroupedItems.Select(x => Uniform(rng, (long)ldb * (tb ? n : Math.Max(1, x.K)))).ToArray();
        var c = GroupedItems.Select(x => Uniform(rng, (long)ldc * Math.Max(1, x.M))).ToArray();
        return (a, b, c, lda, ldb, ldc);
    }

    [Theory]
    [InlineData(false, true, 32, 0f)]
    [InlineData(false, false, 128, 1f)]
    [InlineData(true, false, 33, 0f)]
    [InlineData(true, true, 7, 1f)]
    [InlineData(false, true, 1, 1f)]
    // The vectorised thin paths (items of ≤ 8 rows): 4-column dot blocks with a column tail, 64- and 16-wide
    // AXPY blocks with a scalar tail, k with and without a 16-wide remainder, beta 0 and 1.
    [InlineData(false, true, 70, 0f)]
    [InlineData(false, true, 21, 1f)]
    [InlineData(false, true, 4, 0f)]
    [InlineData(false, false, 70, 0f)]
    [InlineData(false, false, 150, 1f)]
    [InlineData(false, false, 17, 0f)]
    [InlineData(true, false, 83, 1f)]
    [InlineData(true, false, 64, 0f)]
    // Items of > 8 rows through the packed GEMM (full 32-column B slivers and ragged ones, 33- and 9-row
    // items), without and with transA, beta 0 and 1.
    [InlineData(false, false, 48, 1f)]
    [InlineData(false, false, 95, 0f)]
    [InlineData(true, false, 47, 0f)]
    [InlineData(true, false, 16, 1f)]
    [InlineData(true, false, 129, 1f)]
    public void GemmGrouped_CpuMatchesReference(bool ta, bool tb, int n, float beta)
    {
        var (a, b, c, lda, ldb, ldc) = GroupedInputs(n * 4 + (ta ? 1 : 0) + (tb ? 2 : 0), ta, tb, n);
        var r = RunGrouped(Ref, ta, tb, n, beta, a, b, c, lda, ldb, ldc);
        var got = RunGrouped(Cpu, ta, tb, n, beta, a, b, c, lda, ldb, ldc);
        for (int i = 0; i < r.Length; i++)
        {
            // Only the M × N block of each C is written; the padding and the rows of empty items stay.
            AssertClose(got[i], r[i], 1e-5, $"grouped gemm item {i} {GroupedItems[i]} ta={ta} tb={tb} n={n} beta={beta}");
            if (GroupedItems[i].M == 0) AssertExact<float>(got[i], c[i], "untouched");
        }
    }
}
