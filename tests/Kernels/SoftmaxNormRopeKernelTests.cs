using Xunit;
using static NativeReasoner.Tests.Kernels.KernelTestUtil;

namespace NativeReasoner.Tests.Kernels;

public unsafe class SoftmaxNormRopeKernelTests
{
    public static readonly (int rows, int cols)[] RowShapes =
        [(1, 1), (1, 7), (13, 31), (7, 1021), (3, 4099), (127, 127), (1021, 13), (2, 65537)];

    [Fact]
    public void Softmax_MatchesReference()
    {
        var rng = new Random(1000);
        foreach (bool log in (bool[])[false, true])
        foreach (var (rows, cols) in RowShapes)
        {
            var x = Uniform(rng, (long)rows * cols, -8f, 8f);
            if (x.Length > 2) x[1] = 900f; // a large logit must not overflow
            var yr = new float[x.Length];
            var yc = new float[x.Length];
            fixed (float* px = x, pr = yr, pc = yc)
            {
                Ref.Softmax(px, pr, rows, cols, log);
                Cpu.Softmax(px, pc, rows, cols, log);
            }
            AssertClose(yc, yr, 1e-5, $"softmax log={log} ({rows},{cols})");
            var alias = (float[])x.Clone();
            fixed (float* p = alias) Cpu.Softmax(p, p, rows, cols, log);
            AssertClose(alias, yr, 1e-5, $"softmax in place log={log} ({rows},{cols})");
        }
    }

    [Fact]
    public void SoftmaxBackward_MatchesReference()
    {
        var rng = new Random(1001);
        foreach (bool log in (bool[])[false, true])
        foreach (var (rows, cols) in RowShapes)
        {
            var x = Uniform(rng, (long)rows * cols, -4f, 4f);
            var dy = Uniform(rng, x.Length);
            var y = new float[x.Length];
            var dr = new float[x.Length];
            var dc = new float[x.Length];
            fixed (float* px = x, py = y, pg = dy, pr = dr, pc = dc)
            {
                Ref.Softmax(px, py, rows, cols, log);
                Ref.SoftmaxBackward(py, pg, pr, rows, cols, log);
                Cpu.SoftmaxBackward(py, pg, pc, rows, cols, log);
            }
            AssertClose(dc, dr, 1e-4, $"softmax' log={log} ({rows},{cols})");
        }
    }

    [Fact]
    public void Reference_Softmax_HandValues()
    {
        float[] x = [1, 2, 3, 1000, 1001, 1002];
        var y = new float[6];
        var l = new float[6];
        fixed (float* px = x, py = y, pl = l)
        {
            Ref.Softmax(px, py, 2, 3, false);
            Ref.Softmax(px, pl, 2, 3, true);
        }
        double z = Math.Exp(1) + Math.Exp(2) + Math.Exp(3);
        double[] expect = [Math.Exp(1) / z, Math.Exp(2) / z, Math.Exp(3) / z]; // 0.0900306, 0.2447285, 0.6652410
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(expect[i], y[i], 6);
            Assert.Equal(expect[i], y[i + 3], 6); // shift-invariant, no overflow at 1000
            Assert.Equal(Math.Log(expect[i]), l[i + 3], 5);
        }
        Assert.Equal(0.09003057, y[0], 6);
    }

    [Fact]
    public void RmsNorm_MatchesReference()
    {
        var rng = new Random(1100);
        foreach (var (rows, cols) in RowShapes)
        {
            var x = Uniform(rng, (long)rows * cols, -2f, 2f);
            var w = Uniform(rng, cols, 0.5f, 1.5f);
            var yr = new float[x.Length]; var yc = new float[x.Length];
            var rr = new float[rows]; var rc = new float[rows];
            fixed (float* px = x, pw = w, pyr = yr, pyc = yc, prr = rr, prc = rc)
            {
                Ref.RmsNorm(px, pw, pyr, prr, rows, cols, 1e-5f);
                Cpu.RmsNorm(px, pw, pyc, prc, rows, cols, 1e-5f);
            }
            AssertClose(yc, yr, 1e-5, $"rmsnorm ({rows},{cols})");
            AssertClose(rc, rr, 1e-5, $"rstd ({rows},{cols})");
        }
    }

    [Fact]
    public void RmsNormBackward_MatchesReference()
    {
        var rng = new Random(1101);
        foreach (var (rows, cols) in (ReadOnlySpan<(int, int)>)[.. RowShapes, (4099, 31), (300, 520)])
        {
            var x = Uniform(rng, (long)rows * cols, -2f, 2f);
            var w = Uniform(rng, cols, 0.5f, 1.5f);
            var dy = Uniform(rng, x.Length);
            var y = new float[x.Length];
            var rstd = new float[rows];
            var dxr = new float[x.Length]; var dxc = new float[x.Length];
            var dwr = new float[cols]; var dwc = Uniform(rng, cols); // overwritten, not accumulated
            fixed (float* px = x, pw = w, pg = dy, py = y, prs = rstd, pdxr = dxr, pdxc = dxc, pdwr = dwr, pdwc = dwc)
            {
                Ref.RmsNorm(px, pw, py, prs, rows, cols, 1e-6f);
                Ref.RmsNormBackward(px, pw, prs, pg, pdxr, pdwr, rows, cols);
                Cpu.RmsNormBackward(px, pw, prs, pg, pdxc, pdwc, rows, cols);
            }
            // With one column dx is r·w·dy·eps/(x² + eps): pure cancellation, nothing float can match relatively.
            if (cols > 1) AssertClose(dxc, dxr, 1e-5, $"rmsnorm dx ({rows},{cols})");
            AssertClose(dwc, dwr, 1e-4, $"rmsnorm dw ({rows},{cols})");
        }
    }

    [Fact]
    public void Reference_RmsNorm_HandValues()
    {
        float[] x = [3, 4];  // mean(x²) = 12.5
        float[] w = [1, 2];
        var y = new float[2];
        var r = new float[1];
        fixed (float* px = x, pw = w, py = y, pr = r) Ref.RmsNorm(px, pw, py, pr, 1, 2, 0f);
        double rs = 1 / Math.Sqrt(12.5);
        Assert.Equal(rs, r[0], 6);
        Assert.Equal(3 * rs, y[0], 6);
        Assert.Equal(8 * rs, y[1], 6);
    }

    [Fact]
    public void RmsNormBackward_FiniteDifference()
    {
        // L = Σ y·g; check dx and dw of the reference against central differences.
        var rng = new Random(1102);
        int rows = 3, cols = 5;
        var x = Uniform(rng, rows * cols); var w = Uniform(rng, cols, 0.5f, 1.5f); var g = Uniform(rng, rows * cols);
        var dx = new float[x.Length]; var dw = new float[cols]; var rstd = new float[rows]; var y = new float[x.Length];
        double Loss()
        {
            fixed (float* px = x, pw = w, py = y, pr = rstd) Ref.RmsNorm(px, pw, py, pr, rows, cols, 1e-5f);
            double s = 0;
            for (int i = 0; i < y.Length; i++) s += (double)y[i] * g[i];
            return s;
        }
        Loss();
        fixed (float* px = x, pw = w, pr = rstd, pg = g, pdx = dx, pdw = dw) Ref.RmsNormBackward(px, pw, pr, pg, pdx, pdw, rows, cols);
        const float h = 1e-2f;
        for (int i = 0; i < x.Length; i++)
        {
            float keep = x[i];
            x[i] = keep + h; double lp = Loss();
            x[i] = keep - h; double lm = Loss();
            x[i] = keep;
            Assert.Equal((lp - lm) / (2 * h), dx[i], 2);
        }
        for (int c = 0; c < cols; c++)
        {
            float keep = w[c];
            w[c] = keep + h; double lp = Loss();
            w[c] = keep - h; double lm = Loss();
            w[c] = keep;
            Assert.Equal((lp - lm) / (2 * h), dw[c], 2);
        }
    }

    [Fact]
    public void Rope_MatchesReference()
    {
        var rng = new Random(1200);
        foreach (var (outer, T, mid, D) in ((int, int, int, int)[])[(1, 1, 1, 2), (2, 7, 3, 16), (3, 13, 1, 30), (1, 31, 4, 64), (2, 127, 3, 34), (1, 5, 2, 128)])
        foreach (bool inverse in (bool[])[false, true])
        {
            long n = (long)outer * T * mid * D;
            var x = Uniform(rng, n);
            var ang = Uniform(rng, (long)T * D / 2, -3.2f, 3.2f);
            var cos = ang.Select(a => MathF.Cos(a)).ToArray();
            var sin = ang.Select(a => MathF.Sin(a)).ToArray();
            var yr = new float[n]; var yc = new float[n];
            fixed (float* px = x, pc = cos, ps = sin, pyr = yr, pyc = yc)
            {
                Ref.Rope(px, pc, ps, pyr, outer, T, mid, D, inverse);
                Cpu.Rope(px, pc, ps, pyc, outer, T, mid, D, inverse);
            }
            AssertClose(yc, yr, 1e-5, $"rope ({outer},{T},{mid},{D}) inv={inverse}");
            var alias = (float[])x.Clone();
            fixed (float* pa = alias, pc = cos, ps = sin) Cpu.Rope(pa, pc, ps, pa, outer, T, mid, D, inverse);
            AssertClose(alias, yr, 1e-5, "rope in place");
            // inverse undoes forward
            var back = new float[n];
            fixed (float* pyr = yr, pb = back, pc = cos, ps = sin) Cpu.Rope(pyr, pc, ps, pb, outer, T, mid, D, !inverse);
            AssertClose(back, x, 1e-5, "rope round trip");
        }
    }

    [Fact]
    public void Reference_Rope_RotatesKnownPair()
    {
        float[] x = [1f, 0f, 2f, 3f];                 // D = 4: pairs (1, 0) and (2, 3)
        float[] cos = [MathF.Cos(MathF.PI / 2), 1f];  // 90° and 0°
        float[] sin = [MathF.Sin(MathF.PI / 2), 0f];
        var y = new float[4];
        fixed (float* px = x, pc = cos, ps = sin, py = y) Ref.Rope(px, pc, ps, py, 1, 1, 1, 4, false);
        Assert.Equal(0f, y[0], 6);
        Assert.Equal(1f, y[1], 6);
        Assert.Equal(2f, y[2], 6);
        Assert.Equal(3f, y[3], 6);
        fixed (float* px = x, pc = cos, ps = sin, py = y) Ref.Rope(px, pc, ps, py, 1, 1, 1, 4, true);
        Assert.Equal(0f, y[0], 6);
        Assert.Equal(-1f, y[1], 6);
    }
}
