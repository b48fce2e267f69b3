using Xunit;
using static NativeReasoner.Tests.Kernels.KernelTestUtil;

namespace NativeReasoner.Tests.Kernels;

public unsafe class SoftmaxNormRopeKernelTests
{
    public static readonly (int rows, int cols)[] RowShapes =
        [(1, 1), (1, 7), (13, 31), (7, 1021), (3, 4099), (127, 127), (1021, 13), (2, 65537)];

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
