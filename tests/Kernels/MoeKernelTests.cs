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
    public void MoePermute_RejectsOutOfRangeIds()
    {
        int[] idx = [0, 4];
        var o = new int[5]; var s = new int[2];
        Assert.Throws<ArgumentOutOfRangeException>(() => { fixed (int* pi = idx, po = o, ps = s) Ref.MoePermute(pi, 1, 2, 4, po, ps, null); });
        Assert.Throws<ArgumentOutOfRangeException>(() => { fixed (int* pi = idx, po = o, ps = s) Cpu.MoePermute(pi, 1, 2, 4, po, ps, null); });
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

}
