using NativeReasoner.Kernels;
using Xunit;
using static NativeReasoner.Tests.Ilgpu.DeviceArena;
using static NativeReasoner.Tests.Ilgpu.IlgpuTestUtil;

namespace NativeReasoner.Tests.Ilgpu;

/// <summary>
/// IlgpuKernels vs ReferenceKernels: reductions, GEMM, softmax, norms, rope, losses, attention, indexing,
/// top-k and optimizers, at awkward sizes (1, odd, prime, past one group or tile). Sizes stay small: ILGPU's
/// CPU accelerator emulates groups with threads.
/// </summary>
public sealed unsafe class IlgpuAccumulatingTests
{
    public static IEnumerable<object[]> ReduceCases()
    {
        foreach (var op in Enum.GetValues<ReduceOp>())
            foreach (var (o, dim, i) in new[] { (1, 1, 1), (3, 7, 5), (2, 257, 1), (4, 1031, 1), (1, 13, 31) })
                yield return [op, o, dim, i];
    }

    [Theory]
    [MemberData(nameof(ReduceCases))]
    public void Reduce(ReduceOp op, int outer, int dim, int inner)
    {
        var rng = new Random(outer * 1000 + dim + inner);
        int n = outer * dim * inner, m = outer * inner;
        var x = Rand(rng, n);
        // Ties (first index wins) and a NaN (propagates, its index is the arg) in the long rows.
        if (dim > 100) { x[5] = 2f; x[17] = 2f; x[dim + 3] = float.NaN; x[dim + 9] = -2f; x[dim + 11] = -2f; }
        var y = new float[m];
        var arg = new int[m];
        fixed (float* px = x, py = y) fixed (int* pa = arg) Ref.Reduce(op, px, py, outer, dim, inner, pa);
        using var d = new DeviceArena();
        var gx = d.Up(x);
        var gy = d.Alloc<float>(m);
        var ga = d.Alloc<int>(m);
        bool extreme = op is ReduceOp.Max or ReduceOp.Min;
        K.Reduce(op, gx, gy, outer, dim, inner, extreme ? ga : null);
        Close(d.Down(gy, m), y, Accumulating, $"{op} [{outer},{dim},{inner}]");
        if (extreme) Exact<int>(d.Down(ga, m), arg, $"arg{op}");
    }

    public static IEnumerable<object[]> GemmCases()
    {
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
                foreach (var (b, m, n, k) in new[] { (1, 1, 1, 1), (1, 7, 13, 31), (2, 33, 17, 40), (3, 5, 1, 18) })
                    yield return [ta, tb, b, m, n, k];
    }

    [Theory]
    [MemberData(nameof(GemmCases))]
    public void Gemm(bool transA, bool transB, int batch, int M, int N, int K_)
    {
        var rng = new Random(M * 7 + N * 13 + K_ + (transA ? 1 : 0) + (transB ? 2 : 0));
        // Padded leading dimensions, and A broadcast over the batch when batch > 1 (strideA = 0).
        int lda = (transA ? M : K_) + 3, ldb = (transB ? K_ : N) + 1, ldc = N + 2;
        long sa = batch > 1 ? 0 : (long)lda * (transA ? K_ : M);
        long sb = (long)ldb * (transB ? N : K_), sc = (long)ldc * M;
        var A = Rand(rng, (long)lda * (transA ? K_ : M));
        var B = Rand(rng, sb * batch);
        var C = Rand(rng, sc * batch);
        foreach (var (alpha, beta) in new[] { (1f, 0f), (0.5f, -1.25f) })
        {
            var expected = (float[])C.Clone();
            fixed (float* pa = A, pb = B, pc = expected)
                Ref.Gemm(batch, transA, transB, M, N, K_, alpha, pa, lda, sa, pb, ldb, sb, beta, pc, ldc, sc);
            using var d = new DeviceArena();
            var gc = d.Up(C);
            K.Gemm(batch, transA, transB, M, N, K_, alpha, d.Up(A), lda, sa, d.Up(B), ldb, sb, beta, gc, ldc, sc);
            Close(d.Down(gc, C.Length), expected, Accumulating, $"gemm tA={transA} tB={transB} {batch}x{M}x{N}x{K_} α={alpha} β={beta}");
        }
    }

    [Fact]
    public void GemmBetaZeroIgnoresNaN()
    {
        var A = Rand(new Random(1), 6);
        var B = Rand(new Random(2), 6);
        var C = Enumerable.Repeat(float.NaN, 4).ToArray();
        var expected = new float[4];
        fixed (float* pa = A, pb = B, pc = expected) Ref.Gemm(1, false, false, 2, 2, 3, 1f, pa, 3, 0, pb, 2, 0, 0f, pc, 2, 0);
        using var d = new DeviceArena();
        var gc = d.Up(C);
        K.Gemm(1, false, false, 2, 2, 3, 1f, d.Up(A), 3, 0, d.Up(B), 2, 0, 0f, gc, 2, 0);
        Close(d.Down(gc, 4), expected, Accumulating, "beta = 0 with NaN in C");
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 31)]
    [InlineData(2, 1031)]
    public void SoftmaxAndBackward(int rows, int cols)
    {
        var rng = new Random(rows * cols);
        foreach (bool log in new[] { false, true })
        {
            var x = Rand(rng, rows * cols, -5f, 5f);
            var dy = Rand(rng, rows * cols);
            var y = new float[x.Length];
            var dx = new float[x.Length];
            fixed (float* px = x, py = y, pdy = dy, pdx = dx)
            {
                Ref.Softmax(px, py, rows, cols, log);
                Ref.SoftmaxBackward(py, pdy, pdx, rows, cols, log);
            }
            using var d = new DeviceArena();
            var gx = d.Up(x);
            K.Softmax(gx, gx, rows, cols, log); // in place: y may alias x
            Close(d.Down(gx, x.Length), y, Accumulating, $"softmax log={log} [{rows},{cols}]");
            var gdx = d.Alloc<float>(x.Length);
            K.SoftmaxBackward(d.Up(y), d.Up(dy), gdx, rows, cols, log);
            Close(d.Down(gdx, x.Length), dx, Accumulating, $"softmax backward log={log} [{rows},{cols}]");
        }
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(5, 13)]
    [InlineData(3, 1031)]
    public void RmsNormAndBackward(int rows, int cols)
    {
        var rng = new Random(rows + cols);
        var x = Rand(rng, rows * cols, -2f, 2f);
        var w = Rand(rng, cols, 0.5f, 1.5f);
        var dy = Rand(rng, rows * cols);
        var y = new float[x.Length];
        var rstd = new float[rows];
        var dx = new float[x.Length];
        var dw = new float[cols];
        fixed (float* px = x, pw = w, py = y, pr = rstd, pdy = dy, pdx = dx, pdw = dw)
        {
            Ref.RmsNorm(px, pw, py, pr, rows, cols, 1e-5f);
            Ref.RmsNormBackward(px, pw, pr, pdy, pdx, pdw, rows, cols);
        }
        using var d = new DeviceArena();
        var gx = d.Up(x);
        var gw = d.Up(w);
        var gy = d.Alloc<float>(x.Length);
        var gr = d.Alloc<float>(rows);
        K.RmsNorm(gx, gw, gy, gr, rows, cols, 1e-5f);
        Close(d.Down(gy, x.Length), y, Accumulating, "rmsnorm y");
        Close(d.Down(gr, rows), rstd, Accumulating, "rmsnorm rstd");
        var gdx = d.Alloc<float>(x.Length);
        var gdw = d.Alloc<float>(cols);
        K.RmsNormBackward(gx, gw, d.Up(rstd), d.Up(dy), gdx, gdw, rows, cols);
        Close(d.Down(gdx, x.Length), dx, Accumulating, "rmsnorm dx");
        Close(d.Down(gdw, cols), dw, Accumulating, "rmsnorm dw");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Rope(bool inverse)
    {
        int outer = 2, T = 7, mid = 3, D = 10;
        var rng = new Random(inverse ? 1 : 2);
        var x = Rand(rng, outer * T * mid * D);
        var cos = Rand(rng, T * D / 2);
        var sin = Rand(rng, T * D / 2);
        var y = new float[x.Length];
        fixed (float* px = x, pc = cos, ps = sin, py = y) Ref.Rope(px, pc, ps, py, outer, T, mid, D, inverse);
        using var d = new DeviceArena();
        var gx = d.Up(x);
        K.Rope(gx, d.Up(cos), d.Up(sin), gx, outer, T, mid, D, inverse); // in place
        Close(d.Down(gx, x.Length), y, Elementwise, $"rope inverse={inverse}");
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(5, 31)]
    [InlineData(3, 1031)]
    public void CrossEntropyAndBackward(int rows, int V)
    {
        var rng = new Random(rows * V + 1);
        var logits = Rand(rng, rows * V, -4f, 4f);
        var targets = Enumerable.Range(0, rows).Select(r => r == 1 ? -100L : rng.Next(V)).ToArray();
        var dloss = Rand(rng, rows);
        var loss = new float[rows];
        var lse = new float[rows];
        var dl = new float[logits.Length];
        fixed (float* pl = logits, ploss = loss, plse = lse, pd = dloss, pdl = dl) fixed (long* pt = targets)
        {
            Ref.CrossEntropy(pl, pt, ploss, plse, rows, V, -100);
            Ref.CrossEntropyBackward(pl, plse, pt, pd, pdl, rows, V, -100);
        }
        using var d = new DeviceArena();
        var gl = d.Up(logits);
        var gt = d.Up(targets);
        var gloss = d.Alloc<float>(rows);
        var glse = d.Alloc<float>(rows);
        K.CrossEntropy(gl, gt, gloss, glse, rows, V, -100);
        Close(d.Down(gloss, rows), loss, Accumulating, "ce loss");
        Close(d.Down(glse, rows), lse, Accumulating, "ce lse");
        var gdl = d.Alloc<float>(logits.Length);
        K.CrossEntropyBackward(gl, d.Up(lse), gt, d.Up(dloss), gdl, rows, V, -100);
        Close(d.Down(gdl, logits.Length), dl, Accumulating, "ce backward");
    }

    public static IEnumerable<object[]> AttentionCases() =>
    [
        [1, 1, 1, 4, 4, false],
        [2, 37, 37, 16, 8, true],     // more rows than a group, Dk ≠ Dv
        [1, 5, 41, 8, 12, true],      // cached prefix: Tq < Tk, bottom-right causal
        [2, 9, 4, 6, 6, true],        // Tq > Tk: the first queries see no key
        [1, 13, 29, 40, 24, false],
        [1, 3, 70, 200, 130, true],   // wide heads: small tiles
    ];

    [Theory]
    [MemberData(nameof(AttentionCases))]
    public void Attention(int BH, int Tq, int Tk, int Dk, int Dv, bool causal)
    {
        var rng = new Random(BH * 100 + Tq * 10 + Tk + Dk);
        float scale = 1f / MathF.Sqrt(Dk);
        var q = Rand(rng, (long)BH * Tq * Dk);
        var k = Rand(rng, (long)BH * Tk * Dk);
        var v = Rand(rng, (long)BH * Tk * Dv);
        var dO = Rand(rng, (long)BH * Tq * Dv);
        var o = new float[BH * Tq * Dv];
        var lse = new float[BH * Tq];
        var dq = new float[q.Length];
        var dk = new float[k.Length];
        var dv = new float[v.Length];
        fixed (float* pq = q, pk = k, pv = v, po = o, pl = lse, pdo = dO, pdq = dq, pdk = dk, pdv = dv)
        {
            Ref.AttentionForward(pq, pk, pv, po, pl, BH, Tq, Tk, Dk, Dv, scale, causal, 1);
            Ref.AttentionBackward(pq, pk, pv, po, pl, pdo, pdq, pdk, pdv, BH, Tq, Tk, Dk, Dv, scale, causal, 1);
        }
        using var d = new DeviceArena();
        var gq = d.Up(q);
        var gk = d.Up(k);
        var gv = d.Up(v);
        var go = d.Alloc<float>(o.Length);
        var gl = d.Alloc<float>(lse.Length);
        K.AttentionForward(gq, gk, gv, go, gl, BH, Tq, Tk, Dk, Dv, scale, causal, 1);
        string what = $"attention BH={BH} Tq={Tq} Tk={Tk} Dk={Dk} Dv={Dv} causal={causal}";
        Close(d.Down(go, o.Length), o, Accumulating, what + " o");
        Close(d.Down(gl, lse.Length), lse, Accumulating, what + " lse");
        var gdq = d.Alloc<float>(q.Length);
        var gdk = d.Alloc<float>(k.Length);
        var gdv = d.Alloc<float>(v.Length);
        K.AttentionBackward(gq, gk, gv, go, gl, d.Up(dO), gdq, gdk, gdv, BH, Tq, Tk, Dk, Dv, scale, causal, 1);
        Close(d.Down(gdq, q.Length), dq, Accumulating, what + " dq");
        Close(d.Down(gdk, k.Length), dk, Accumulating, what + " dk");
        Close(d.Down(gdv, v.Length), dv, Accumulating, what + " dv");
    }

    [Fact]
    public void IndexingOps()
    {
        var rng = new Random(9);
        int outer = 3, dimIn = 7, n = 13, inner = 5, dimDst = 7;
        var x = Rand(rng, outer * dimIn * inner);
        var idx = Enumerable.Range(0, n).Select(_ => (long)rng.Next(dimIn)).ToArray();
        idx[n - 1] = idx[0]; // a repeat: IndexAdd must accumulate
        var src = Rand(rng, outer * n * inner);
        var gidx = Enumerable.Range(0, outer * n * inner).Select(_ => (long)rng.Next(dimIn)).ToArray();
        var dst0 = Rand(rng, outer * dimDst * inner);
        var ySel = new float[outer * n * inner];
        var yGat = new float[outer * n * inner];
        var dAdd = (float[])dst0.Clone();
        var dSca = (float[])dst0.Clone();
        fixed (float* px = x, ps = src, p1 = ySel, p2 = yGat, p3 = dAdd, p4 = dSca) fixed (long* pi = idx, pg = gidx)
        {
            Ref.IndexSelect(px, pi, p1, outer, dimIn, n, inner);
            Ref.Gather(px, pg, p2, outer, dimIn, n, inner);
            Ref.IndexAdd(ps, pi, p3, outer, n, dimDst, inner);
            Ref.ScatterAdd(ps, pg, p4, outer, n, dimDst, inner);
        }
        using var d = new DeviceArena();
        var gx = d.Up(x);
        var gi = d.Up(idx);
        var gg = d.Up(gidx);
        var gs = d.Up(src);
        var o1 = d.Alloc<float>(ySel.Length);
        var o2 = d.Alloc<float>(yGat.Length);
        var o3 = d.Up(dst0);
        var o4 = d.Up(dst0);
        K.IndexSelect(gx, gi, o1, outer, dimIn, n, inner);
        K.Gather(gx, gg, o2, outer, dimIn, n, inner);
        K.IndexAdd(gs, gi, o3, outer, n, dimDst, inner);
        K.ScatterAdd(gs, gg, o4, outer, n, dimDst, inner);
        Close(d.Down(o1, ySel.Length), ySel, 0, "index_select");
        Close(d.Down(o2, yGat.Length), yGat, 0, "gather");
        Close(d.Down(o3, dAdd.Length), dAdd, Elementwise, "index_add");
        Close(d.Down(o4, dSca.Length), dSca, Elementwise, "scatter_add");
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(4, 64, 8)]
    [InlineData(3, 1031, 50)]
    [InlineData(2, 7, 7)]
    public void TopK(int rows, int cols, int k)
    {
        var rng = new Random(rows * cols + k);
        // Coarse values make ties; one NaN ranks first.
        var x = Enumerable.Range(0, rows * cols).Select(_ => (float)rng.Next(-20, 20) / 4).ToArray();
        if (cols > 3) x[cols + 2 < x.Length ? cols + 2 : 2] = float.NaN;
        var vals = new float[rows * k];
        var idx = new long[rows * k];
        fixed (float* px = x, pv = vals) fixed (long* pi = idx) Ref.TopK(px, pv, pi, rows, cols, k);
        using var d = new DeviceArena();
        var gv = d.Alloc<float>(vals.Length);
        var gi = d.Alloc<long>(idx.Length);
        K.TopK(d.Up(x), gv, gi, rows, cols, k);
        Exact<long>(d.Down(gi, idx.Length), idx, "top-k indices");
        Close(d.Down(gv, vals.Length), vals, 0, "top-k values");
    }

    [Fact]
    public void Optimizers()
    {
        int n = 1031;
        var rng = new Random(4);
        var p = Rand(rng, n);
        var g = Rand(rng, n);
        var m = Rand(rng, n, -0.1f, 0.1f);
        var v = Rand(rng, n, 0f, 0.01f);
        var (ep, em, ev) = ((float[])p.Clone(), (float[])m.Clone(), (float[])v.Clone());
        fixed (float* pp = ep, pg = g, pm = em, pv = ev) Ref.AdamWStep(pp, pg, pm, pv, n, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 1 - 0.9f * 0.9f, 1 - 0.999f * 0.999f);
        using var d = new DeviceArena();
        float* gp = d.Up(p), gg = d.Up(g), gm = d.Up(m), gv = d.Up(v);
        K.AdamWStep(gp, gg, gm, gv, n, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 1 - 0.9f * 0.9f, 1 - 0.999f * 0.999f);
        Close(d.Down(gp, n), ep, Elementwise, "adamw p");
        Close(d.Down(gm, n), em, Elementwise, "adamw m");
        Close(d.Down(gv, n), ev, Elementwise, "adamw v");

        foreach (var (mom, damp, wd, nest, first) in new[] { (0f, 0f, 0.01f, false, true), (0.9f, 0.1f, 0f, false, true), (0.9f, 0f, 0.05f, true, false), (0.9f, 0.25f, 0.05f, false, false) })
        {
            var (sp, sb) = ((float[])p.Clone(), (float[])m.Clone());
            fixed (float* pp = sp, pg = g, pb = sb) Ref.SgdStep(pp, pg, pb, n, 0.1f, mom, damp, wd, nest, first);
            float* hp = d.Up(p), hb = d.Up(m);
            K.SgdStep(hp, d.Up(g), hb, n, 0.1f, mom, damp, wd, nest, first);
            string what = $"sgd momentum={mom} dampening={damp} wd={wd} nesterov={nest} first={first}";
            Close(d.Down(hp, n), sp, Elementwise, what + " p");
            Close(d.Down(hb, n), sb, Elementwise, what + " buffer");
        }
    }
}
