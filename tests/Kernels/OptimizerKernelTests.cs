using Xunit;
using static NativeReasoner.Tests.Kernels.KernelTestUtil;

namespace NativeReasoner.Tests.Kernels;

public unsafe class OptimizerKernelTests
{
    [Fact]
    public void AdamW_MatchesReference()
    {
        var rng = new Random(1700);
        foreach (int n in Sizes)
        {
            var p = Uniform(rng, n); var g = Uniform(rng, n);
            var m = Uniform(rng, n, -0.1f, 0.1f); var v = Uniform(rng, n, 0f, 0.01f);
            var (pr, mr, vr) = ((float[])p.Clone(), (float[])m.Clone(), (float[])v.Clone());
            var (pc, mc, vc) = ((float[])p.Clone(), (float[])m.Clone(), (float[])v.Clone());
            float b1 = 0.9f, b2 = 0.999f;
            int t = 3;
            float bias1 = 1 - MathF.Pow(b1, t), bias2 = 1 - MathF.Pow(b2, t);
            fixed (float* pg = g, ppr = pr, pmr = mr, pvr = vr, ppc = pc, pmc = mc, pvc = vc)
            {
                Ref.AdamWStep(ppr, pg, pmr, pvr, n, 1e-3f, b1, b2, 1e-8f, 0.1f, bias1, bias2);
                Cpu.AdamWStep(ppc, pg, pmc, pvc, n, 1e-3f, b1, b2, 1e-8f, 0.1f, bias1, bias2);
            }
            AssertClose(pc, pr, 1e-5, $"adamw p n={n}");
            AssertClose(mc, mr, 1e-5, $"adamw m n={n}");
            AssertClose(vc, vr, 1e-5, $"adamw v n={n}");
        }
    }

    [Fact]
    public void Reference_AdamW_OneStepByHand()
    {
        float[] p = [1f], g = [0.5f], m = [0f], v = [0f];
        fixed (float* pp = p, pg = g, pm = m, pv = v)
            Ref.AdamWStep(pp, pg, pm, pv, 1, 0.1f, 0.9f, 0.999f, 1e-8f, 0.01f, 1 - 0.9f, 1 - 0.999f);
        // p = 1 − 0.1·0.01·1 = 0.999; m = 0.05; v = 0.00025; m̂ = 0.5, v̂ = 0.25 → step 0.1·0.5/(0.5 + 1e-8)
        Assert.Equal(0.05f, m[0], 6);
        Assert.Equal(0.00025f, v[0], 8);
        Assert.Equal(0.999 - 0.1 * 0.5 / (0.5 + 1e-8), p[0], 6); // ≈ 0.899
    }

    [Fact]
    public void Sgd_MatchesReference_AllModes()
    {
        var rng = new Random(1800);
        foreach (int n in Sizes)
        foreach (var (mom, damp, nesterov) in ((float, float, bool)[])[(0f, 0f, false), (0.9f, 0f, false), (0.9f, 0.1f, false), (0.8f, 0f, true)])
        foreach (bool first in (bool[])[true, false])
        {
            var p = Uniform(rng, n); var g = Uniform(rng, n); var buf = Uniform(rng, n);
            var (pr, br) = ((float[])p.Clone(), (float[])buf.Clone());
            var (pc, bc) = ((float[])p.Clone(), (float[])buf.Clone());
            fixed (float* pg = g, ppr = pr, pbr = br, ppc = pc, pbc = bc)
            {
                Ref.SgdStep(ppr, pg, pbr, n, 0.05f, mom, damp, 0.01f, nesterov, first);
                Cpu.SgdStep(ppc, pg, pbc, n, 0.05f, mom, damp, 0.01f, nesterov, first);
            }
            AssertClose(pc, pr, 1e-5, $"sgd p n={n} mom={mom} nesterov={nesterov}");
            AssertClose(bc, br, 1e-5, $"sgd buf n={n}");
            if (mom == 0) AssertExact<float>(bc, buf, "buffer untouched without momentum");
        }
    }

    [Fact]
    public void Reference_Sgd_TwoStepsByHand()
    {
        // momentum 0.9, dampening 0.5, wd 0, lr 0.1, g = 1 both steps.
        float[] p = [1f], g = [1f], buf = [0f];
        fixed (float* pp = p, pg = g, pb = buf)
        {
            Ref.SgdStep(pp, pg, pb, 1, 0.1f, 0.9f, 0.5f, 0f, false, true);   // buf = 1 (no dampening on step 1); p = 0.9
            Assert.Equal(1f, buf[0], 6);
            Assert.Equal(0.9f, p[0], 6);
            Ref.SgdStep(pp, pg, pb, 1, 0.1f, 0.9f, 0.5f, 0f, false, false);  // buf = 0.9 + 0.5 = 1.4; p = 0.76
            Assert.Equal(1.4f, buf[0], 6);
            Assert.Equal(0.76f, p[0], 6);
        }
        // Nesterov, wd 0.1, no dampening: g' = g + 0.1·p.
        p = [2f]; buf = [0f];
        fixed (float* pp = p, pg = g, pb = buf)
        {
            Ref.SgdStep(pp, pg, pb, 1, 0.1f, 0.9f, 0f, 0.1f, true, true);
            // g' = 1.2, buf = 1.2, d = 1.2 + 0.9·1.2 = 2.28, p = 2 − 0.228 = 1.772
            Assert.Equal(1.2f, buf[0], 6);
            Assert.Equal(1.772f, p[0], 5);
            Ref.SgdStep(pp, pg, pb, 1, 0.1f, 0.9f, 0f, 0.1f, true, false);
            // g' = 1.1772, buf = 0.9·1.2 + 1.1772 = 2.2572, d = 1.1772 + 0.9·2.2572 = 3.20868, p = 1.772 − 0.320868
            Assert.Equal(2.2572f, buf[0], 5);
            Assert.Equal(1.451132f, p[0], 5);
        }
        // No momentum: buffer untouched.
        p = [1f]; buf = [7f];
        fixed (float* pp = p, pg = g, pb = buf) Ref.SgdStep(pp, pg, pb, 1, 0.5f, 0f, 0f, 0f, false, false);
        Assert.Equal(0.5f, p[0]);
        Assert.Equal(7f, buf[0]);
    }
}
