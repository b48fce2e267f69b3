using Xunit;
using static NativeReasoner.Tests.Kernels.KernelTestUtil;

namespace NativeReasoner.Tests.Kernels;

public unsafe class LossIndexingKernelTests
{
    [Fact]
    public void CrossEntropy_MatchesReference()
    {
        var rng = new Random(1300);
        foreach (var (rows, V) in ((int, int)[])[(1, 1), (1, 7), (13, 31), (7, 1021), (3, 4099), (1021, 13), (2, 65537)])
        {
            var logits = Uniform(rng, (long)rows * V, -6f, 6f);
            if (logits.Length > 3) logits[2] = 1000f;
            var targets = new long[rows];
            for (int r = 0; r < rows; r++) targets[r] = r % 4 == 3 ? -100 : rng.Next(V);
            var dloss = Uniform(rng, rows, 0.1f, 2f);
            var lr = new float[rows]; var lc = new float[rows];
            var sr = new float[rows]; var sc = new float[rows];
            var gr = new float[logits.Length]; var gc = Uniform(rng, logits.Length);
            fixed (float* px = logits, plr = lr, plc = lc, psr = sr, psc = sc, pd = dloss, pgr = gr, pgc = gc)
            fixed (long* pt = targets)
            {
                Ref.CrossEntropy(px, pt, plr, psr, rows, V, -100);
                Cpu.CrossEntropy(px, pt, plc, psc, rows, V, -100);
                Ref.CrossEntropyBackward(px, psr, pt, pd, pgr, rows, V, -100);
                Cpu.CrossEntropyBackward(px, psr, pt, pd, pgc, rows, V, -100);
            }
            AssertClose(lc, lr, 1e-5, $"ce loss ({rows},{V})");
            AssertClose(sc, sr, 1e-5, $"ce lse ({rows},{V})");
            AssertClose(gc, gr, 1e-5, $"ce grad ({rows},{V})");
            for (int r = 0; r < rows; r++)
                if (targets[r] == -100) Assert.Equal(0f, lc[r]);
        }
    }

    [Fact]
    public void Reference_CrossEntropy_HandValues()
    {
        float[] logits = [1, 2, 3, 1000, 1000, 1000];
        long[] targets = [0, 2];
        var loss = new float[2]; var lse = new float[2];
        float[] dloss = [1f, 0.5f];
        var g = new float[6];
        fixed (float* px = logits, pl = loss, ps = lse, pd = dloss, pg = g)
        fixed (long* pt = targets)
        {
            Ref.CrossEntropy(px, pt, pl, ps, 2, 3, -1);
            Ref.CrossEntropyBackward(px, ps, pt, pd, pg, 2, 3, -1);
        }
        double z = Math.Log(Math.Exp(1) + Math.Exp(2) + Math.Exp(3)); // 3.4076059
        Assert.Equal(z, lse[0], 5);
        Assert.Equal(z - 1, loss[0], 5);                // 2.4076059
        Assert.Equal(Math.Log(3), loss[1], 4);          // uniform over 3, no overflow at 1000
        Assert.Equal(Math.Exp(1 - z) - 1, g[0], 5);
        // lse ≈ 1001.1 is stored as float (ulp 6e-5), which limits the gradient of the second row.
        Assert.Equal(0.5 * (1.0 / 3 - 1), g[5], 4);
    }

    [Fact]
    public void IndexSelect_And_IndexAdd_MatchReference()
    {
        var rng = new Random(1400);
        foreach (var (outer, dimIn, n, inner) in ((int, int, int, int)[])[(1, 1, 1, 1), (1, 31, 13, 7), (3, 7, 29, 1), (1, 1021, 127, 257), (2, 13, 4099, 3), (5, 3, 11, 1021)])
        {
            var idx = new long[n];
            for (int j = 0; j < n; j++) idx[j] = rng.Next(dimIn); // repeats on purpose
            var x = Uniform(rng, (long)outer * dimIn * inner);
            var yr = new float[(long)outer * n * inner]; var yc = new float[yr.Length];
            var src = Uniform(rng, yr.Length);
            var dst0 = Uniform(rng, x.Length);
            var dr = (float[])dst0.Clone(); var dc = (float[])dst0.Clone();
            fixed (float* px = x, pyr = yr, pyc = yc, ps = src, pdr = dr, pdc = dc)
            fixed (long* pi = idx)
            {
                Ref.IndexSelect(px, pi, pyr, outer, dimIn, n, inner);
                Cpu.IndexSelect(px, pi, pyc, outer, dimIn, n, inner);
                Ref.IndexAdd(ps, pi, pdr, outer, n, dimIn, inner);
                Cpu.IndexAdd(ps, pi, pdc, outer, n, dimIn, inner);
            }
            AssertExact<float>(yc, yr, "index_select");
            AssertClose(dc, dr, 1e-5, $"index_add ({outer},{dimIn},{n},{inner})");
        }
    }

    [Fact]
    public void Gather_And_ScatterAdd_MatchReference()
    {
        var rng = new Random(1500);
        foreach (var (outer, dimIn, dimOut, inner) in ((int, int, int, int)[])[(1, 1, 1, 1), (1, 31, 13, 7), (3, 7, 29, 1), (2, 127, 131, 257), (1021, 13, 5, 1), (4, 3, 11, 1021)])
        {
            long n = (long)outer * dimOut * inner;
            var idx = new long[n];
            for (long j = 0; j < n; j++) idx[j] = rng.Next(dimIn);
            var x = Uniform(rng, (long)outer * dimIn * inner);
            var yr = new float[n]; var yc = new float[n];
            var src = Uniform(rng, n);
            var dst0 = Uniform(rng, x.Length);
            var dr = (float[])dst0.Clone(); var dc = (float[])dst0.Clone();
            fixed (float* px = x, pyr = yr, pyc = yc, ps = src, pdr = dr, pdc = dc)
            fixed (long* pi = idx)
            {
                Ref.Gather(px, pi, pyr, outer, dimIn, dimOut, inner);
                Cpu.Gather(px, pi, pyc, outer, dimIn, dimOut, inner);
                Ref.ScatterAdd(ps, pi, pdr, outer, dimOut, dimIn, inner);
                Cpu.ScatterAdd(ps, pi, pdc, outer, dimOut, dimIn, inner);
            }
            AssertExact<float>(yc, yr, "gather");
            AssertClose(dc, dr, 1e-5, $"scatter_add ({outer},{dimIn},{dimOut},{inner})");
        }
    }

    [Fact]
    public void TopK_MatchesReference()
    {
        var rng = new Random(1600);
        foreach (var (rows, cols, k) in ((int, int, int)[])[(1, 1, 1), (1, 7, 0), (3, 7, 7), (13, 31, 5), (7, 1021, 50), (2, 4099, 1), (1021, 13, 4), (1, 65537, 40)])
        {
            var x = Uniform(rng, (long)rows * cols);
            // Lots of ties (few distinct values) and a few NaNs.
            for (int i = 0; i < x.Length; i++) if (i % 3 == 0) x[i] = MathF.Round(x[i] * 4) / 4;
            for (int i = 5; i < x.Length; i += 97) x[i] = float.NaN;
            var vr = new float[rows * k]; var vc = new float[rows * k];
            var ir = new long[rows * k]; var ic = new long[rows * k];
            fixed (float* px = x, pvr = vr, pvc = vc)
            fixed (long* pir = ir, pic = ic)
            {
                Ref.TopK(px, pvr, pir, rows, cols, k);
                Cpu.TopK(px, pvc, pic, rows, cols, k);
            }
            AssertExact<long>(ic, ir, $"topk idx ({rows},{cols},{k})");
            AssertExact<float>(vc, vr, $"topk val ({rows},{cols},{k})");
        }
    }

    [Fact]
    public void Reference_TopK_TiesAndNaN()
    {
        float[] x = [1f, 3f, 3f, float.NaN, 2f, 3f, float.NaN];
        var v = new float[4];
        var i = new long[4];
        fixed (float* px = x, pv = v)
        fixed (long* pi = i)
            Ref.TopK(px, pv, pi, 1, 7, 4);
        Assert.Equal([3L, 6L, 1L, 2L], i);
        Assert.True(float.IsNaN(v[0]) && float.IsNaN(v[1]));
        Assert.Equal(3f, v[2]);
        fixed (float* px = x, pv = v)
        fixed (long* pi = i)
            Cpu.TopK(px, pv, pi, 1, 7, 4);
        Assert.Equal([3L, 6L, 1L, 2L], i);
    }
}
