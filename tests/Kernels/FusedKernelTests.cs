using Xunit;
using static NativeReasoner.Tests.Kernels.KernelTestUtil;

namespace NativeReasoner.Tests.Kernels;

/// <summary>The fused kernels (SwiGLU, log-softmax + gather) against the scalar reference at awkward sizes.</summary>
public unsafe class FusedKernelTests
{
    [Fact]
    public void SiluMul_MatchesReference()
    {
        var rng = new Random(1500);
        foreach (int n in Sizes)
        {
            var g = Uniform(rng, n, -8f, 8f);
            var u = Uniform(rng, n, -2f, 2f);
            var yr = new float[n]; var yc = Uniform(rng, n);
            fixed (float* pg = g, pu = u, pyr = yr, pyc = yc)
            {
                Ref.SiluMul(pg, pu, pyr, n);
                Cpu.SiluMul(pg, pu, pyc, n);
            }
            AssertClose(yc, yr, 1e-6, $"silu_mul n={n}");
        }
    }

    [Fact]
    public void SiluMul_InPlaceOverGateAndUp()
    {
        var rng = new Random(1501);
        const int n = 4099;
        var g = Uniform(rng, n, -8f, 8f);
        var u = Uniform(rng, n, -2f, 2f);
        var expected = new float[n];
        var g2 = (float[])g.Clone(); var u2 = (float[])u.Clone();
        fixed (float* pg = g, pu = u, pe = expected, pg2 = g2, pu2 = u2)
        {
            Ref.SiluMul(pg, pu, pe, n);
            Cpu.SiluMul(pg, pu, pg, n);    // y aliases gate
            Cpu.SiluMul(pg2, pu2, pu2, n); // y aliases up
        }
        AssertClose(g, expected, 1e-6, "y = gate");
        AssertClose(u2, expected, 1e-6, "y = up");
    }

    [Fact]
    public void SiluMulBackward_MatchesReference()
    {
        var rng = new Random(1502);
        foreach (int n in Sizes)
        {
            var g = Uniform(rng, n, -8f, 8f);
            var u = Uniform(rng, n, -2f, 2f);
            var dy = Uniform(rng, n, -1f, 1f);
            var dgr = new float[n]; var dur = new float[n];
            var dgc = Uniform(rng, n); var duc = Uniform(rng, n);
            fixed (float* pg = g, pu = u, pd = dy, pdgr = dgr, pdur = dur, pdgc = dgc, pduc = duc)
            {
                Ref.SiluMulBackward(pg, pu, pd, pdgr, pdur, n);
                Cpu.SiluMulBackward(pg, pu, pd, pdgc, pduc, n);
            }
            AssertClose(dgc, dgr, 1e-6, $"dgate n={n}");
            AssertClose(duc, dur, 1e-6, $"dup n={n}");
        }
    }

    [Fact]
    public void SiluMulBackward_MatchesFiniteDifferences()
    {
        // The reference itself against central differences of silu(g)·u in double.
        float[] g = [-3f, -0.5f, 0f, 0.7f, 4f];
        float[] u = [0.3f, -1.2f, 2f, 0.9f, -0.4f];
        float[] dy = [1f, 1f, 1f, 1f, 1f];
        var dg = new float[5]; var du = new float[5];
        fixed (float* pg = g, pu = u, pd = dy, pdg = dg, pdu = du) Ref.SiluMulBackward(pg, pu, pd, pdg, pdu, 5);
        static double F(double x, double y) => x / (1 + Math.Exp(-x)) * y;
        for (int i = 0; i < 5; i++)
        {
            const double h = 1e-5;
            Assert.Equal((F(g[i] + h, u[i]) - F(g[i] - h, u[i])) / (2 * h), dg[i], 4);
            Assert.Equal((F(g[i], u[i] + h) - F(g[i], u[i] - h)) / (2 * h), du[i], 4);
        }
    }

    [Fact]
    public void LogSoftmaxGather_MatchesReference()
    {
        var rng = new Random(1503);
        foreach (var (rows, V) in ((int, int)[])[(1, 1), (1, 7), (13, 31), (7, 1021), (3, 4099), (1021, 13), (2, 65537)])
        foreach (float temperature in new[] { 1f, 0.7f, 1.6f })
        {
            var logits = Uniform(rng, (long)rows * V, -6f, 6f);
            // A spike far past exp's range checks the max subtraction. Only at T = 1: there 1000 − lse rounds
            // exactly, while 1000/T carries the float rounding of lse (~1e-4) into a near-zero gradient row.
            bool spike = temperature == 1f && logits.Length > 3;
            if (spike) logits[2] = 1000f;
            if (V > 8) logits[V - 1] = float.NegativeInfinity;   // a masked vocabulary entry
            var ids = new long[rows];
            for (int r = 0; r < rows; r++) ids[r] = rng.Next(V - (V > 8 ? 1 : 0));
            if (spike && V > 8) ids[0] = 2;
            var dlogp = Uniform(rng, rows, -2f, 2f);
            var lpr = new float[rows]; var lpc = Uniform(rng, rows);
            var sr = new float[rows]; var sc = Uniform(rng, rows);
            var gr = new float[logits.Length]; var gc = Uniform(rng, logits.Length);
            float invT = 1f / temperature;
            fixed (float* px = logits, plr = lpr, plc = lpc, psr = sr, psc = sc, pd = dlogp, pgr = gr, pgc = gc)
            fixed (long* pi = ids)
            {
                Ref.LogSoftmaxGather(px, pi, plr, psr, rows, V, invT);
                Cpu.LogSoftmaxGather(px, pi, plc, psc, rows, V, invT);
                Ref.LogSoftmaxGatherBackward(px, pi, psr, pd, pgr, rows, V, invT);
                Cpu.LogSoftmaxGatherBackward(px, pi, psr, pd, pgc, rows, V, invT);
            }
            string what = $"({rows},{V}) T={temperature}";
            AssertClose(lpc, lpr, 1e-5, "logp " + what);
            AssertClose(sc, sr, 1e-5, "lse " + what);
            if (V == 1)
            {
                // One class: the gradient is 0 up to rounding of lse, so a relative error means nothing.
                foreach (float v in gc) Assert.True(Math.Abs(v) < 1e-5, $"dlogits {what}: {v}");
            }
            else AssertClose(gc, gr, 1e-5, "dlogits " + what);
        }
    }

    [Fact]
    public void Reference_LogSoftmaxGather_HandValues()
    {
        float[] logits = [1, 2, 3];
        long[] ids = [1];
        var logp = new float[1]; var lse = new float[1];
        float[] dlogp = [1f];
        var g = new float[3];
        fixed (float* px = logits, pl = logp, ps = lse, pd = dlogp, pg = g)
        fixed (long* pi = ids)
        {
            Ref.LogSoftmaxGather(px, pi, pl, ps, 1, 3, 0.5f); // temperature 2
            Ref.LogSoftmaxGatherBackward(px, pi, ps, pd, pg, 1, 3, 0.5f);
        }
        double z = Math.Log(Math.Exp(0.5) + Math.Exp(1) + Math.Exp(1.5));
        Assert.Equal(z, lse[0], 5);
        Assert.Equal(1 - z, logp[0], 5);
        // d logp / d logits = (onehot − softmax(z)) / T
        Assert.Equal(-0.5 * Math.Exp(0.5 - z), g[0], 5);
        Assert.Equal(0.5 * (1 - Math.Exp(1 - z)), g[1], 5);
        Assert.Equal(-0.5 * Math.Exp(1.5 - z), g[2], 5);
    }
}
