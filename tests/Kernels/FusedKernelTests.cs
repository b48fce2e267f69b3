using Xunit;
using static NativeReasoner.Tests.Kernels.KernelTestUtil;

namespace NativeReasoner.Tests.Kernels;

/// <summary>The fused kernels (SwiGLU, log-softmax + gather) against the scalar reference at awkward sizes.</summary>
public unsafe class FusedKernelTests
{
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
