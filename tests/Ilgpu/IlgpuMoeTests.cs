using NativeReasoner.Tests.Kernels;
using Xunit;
using static NativeReasoner.Tests.Ilgpu.DeviceArena;
using static NativeReasoner.Tests.Ilgpu.IlgpuTestUtil;

namespace NativeReasoner.Tests.Ilgpu;

/// <summary>IlgpuKernels vs ReferenceKernels for the MoE router, the permutation by expert, dispatch and combine.</summary>
public sealed unsafe class IlgpuMoeTests
{
    [Fact]
    public void MoeRoute()
    {
        int seed = 0;
        foreach (var c in MoeKernelTests.RouteCases)
        {
            var (s, bias) = MoeKernelTests.RouteInputs(++seed, c.N, c.E, c.Ties);
            foreach (bool normalize in new[] { true, false })
            {
                var sel = new float[c.N * c.E];
                var idx = new int[c.N * c.K];
                var w = new float[idx.Length];
                fixed (float* ps = s, pb = bias, psel = sel, pw = w)
                fixed (int* pi = idx)
                    Ref.MoeRoute(ps, pb, c.N, c.E, c.Groups, c.Keep, c.K, c.Bias, psel, pi, pw, normalize, 2.5f);
                using var d = new DeviceArena();
                var gs = d.Up(s);
                var gb = d.Up(bias);
                var gsel = d.Alloc<float>(sel.Length);
                var gi = d.Alloc<int>(idx.Length);
                var gw = d.Alloc<float>(w.Length);
                K.MoeRoute(gs, c.Bias ? gb : null, c.N, c.E, c.Groups, c.Keep, c.K, c.Bias, gsel, gi, gw, normalize, 2.5f);
                string what = $"route {c} normalize={normalize}";
                Exact<int>(d.Down(gi, idx.Length), idx, what + " indices");
                Exact<float>(d.Down(gsel, sel.Length), sel, what + " selection");
                Close(d.Down(gw, w.Length), w, 1e-5, what + " weights");
            }
        }
    }

    [Fact]
    public void MoePermute()
    {
        int seed = 100;
        foreach (var c in MoeKernelTests.PermuteCases)
        {
            var idx = MoeKernelTests.PermuteInputs(++seed, c.N, c.K, c.Range);
            var o = new int[c.E + 1]; var s = new int[idx.Length]; var p = new int[idx.Length];
            fixed (int* pi = idx, po = o, ps = s, pp = p) Ref.MoePermute(pi, c.N, c.K, c.E, po, ps, pp);
            using var d = new DeviceArena();
            var gi = d.Up(idx);
            var go = d.Alloc<int>(o.Length);
            var gs = d.Alloc<int>(s.Length);
            var gp = d.Alloc<int>(p.Length);
            K.MoePermute(gi, c.N, c.K, c.E, go, gs, gp);
            Exact<int>(d.Down(go, o.Length), o, $"offsets {c}");
            Exact<int>(d.Down(gs, s.Length), s, $"order {c}");
            Exact<int>(d.Down(gp, p.Length), p, $"position {c}");
            // Without the inverse.
            var gs2 = d.Alloc<int>(s.Length);
            K.MoePermute(gi, c.N, c.K, c.E, go, gs2, null);
            Exact<int>(d.Down(gs2, s.Length), s, $"order without position {c}");
        }
    }

    [Fact]
    public void MoeDispatchCombine()
    {
        int seed = 200;
        foreach (var (n, k, dim) in new[] { (1, 1, 1), (1, 8, 7), (13, 8, 31), (127, 6, 128) })
        {
            var rng = new Random(++seed);
            var idx = MoeKernelTests.PermuteInputs(seed, n, k, 16);
            var offsets = new int[17]; var order = new int[n * k]; var pos = new int[n * k];
            fixed (int* pi = idx, po = offsets, pord = order, ppos = pos) Ref.MoePermute(pi, n, k, 16, po, pord, ppos);
            var x = Rand(rng, (long)n * dim);
            var w = Rand(rng, n * k, 0f, 1f);
            var src = Rand(rng, (long)n * k * dim);
            var dy = Rand(rng, (long)n * dim);
            foreach (bool weighted in new[] { false, true })
            {
                var dR = new float[n * k * dim]; var cR = new float[n * dim]; var gR = new float[n * k];
                fixed (float* px = x, pw = w, ps = src, pdy = dy, pdr = dR, pcr = cR, pgr = gR)
                fixed (int* pp = pos)
                {
                    Ref.MoeDispatch(px, pp, weighted ? pw : null, n, k, dim, pdr);
                    Ref.MoeCombine(ps, pp, weighted ? pw : null, n, k, dim, pcr);
                    Ref.MoeCombineWeightGrad(pdy, ps, pp, n, k, dim, pgr);
                }
                using var d = new DeviceArena();
                var gx = d.Up(x); var gw = d.Up(w); var gsrc = d.Up(src); var gdy = d.Up(dy); var gp = d.Up(pos);
                var gd = d.Alloc<float>(dR.Length); var gc = d.Alloc<float>(cR.Length); var gg = d.Alloc<float>(gR.Length);
                K.MoeDispatch(gx, gp, weighted ? gw : null, n, k, dim, gd);
                K.MoeCombine(gsrc, gp, weighted ? gw : null, n, k, dim, gc);
                K.MoeCombineWeightGrad(gdy, gsrc, gp, n, k, dim, gg);
                string what = $"({n},{k},{dim}) weighted={weighted}";
                Close(d.Down(gd, dR.Length), dR, 1e-6, "dispatch " + what);
                Close(d.Down(gc, cR.Length), cR, 1e-5, "combine " + what);
                Close(d.Down(gg, gR.Length), gR, 1e-5, "weight grad " + what);
            }
        }
    }

    [Theory]
    [InlineData(false, true, 32, 0f)]
    [InlineData(false, false, 13, 1f)]
    [InlineData(true, false, 33, 0f)]
    public void GemmGrouped(bool ta, bool tb, int n, float beta)
    {
        var (a, b, c, lda, ldb, ldc) = MoeKernelTests.GroupedInputs(n * 4 + (ta ? 1 : 0) + (tb ? 2 : 0), ta, tb, n);
        var r = MoeKernelTests.RunGrouped(Ref, ta, tb, n, beta, a, b, c, lda, ldb, ldc);
        var items = MoeKernelTests.GroupedItems;
        using var d = new DeviceArena();
        var ga = a.Select(x => (nint)d.Up(x)).ToArray();
        var gb = b.Select(x => (nint)d.Up(x)).ToArray();
        var gc = c.Select(x => (nint)d.Up(x)).ToArray();
        var ms = items.Select(x => x.M).ToArray();
        var ks = items.Select(x => x.K).ToArray();
        fixed (int* pm = ms, pk = ks)
        fixed (nint* pa = ga, pb = gb, pc = gc)
            K.GemmGrouped(items.Length, ta, tb, pm, n, pk, 0.75f, (float**)pa, lda, (float**)pb, ldb, beta, (float**)pc, ldc);
        for (int i = 0; i < items.Length; i++)
            Close(d.Down((float*)gc[i], c[i].Length), r[i], Accumulating, $"grouped gemm item {i} {items[i]}");
    }
}
