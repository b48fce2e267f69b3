using NativeReasoner.Kernels;
using Xunit;
using static NativeReasoner.Tests.Kernels.KernelTestUtil;

namespace NativeReasoner.Tests.Kernels;

public unsafe class ElementwiseKernelTests
{
    private static (float lo, float hi) Domain(UnaryOp op) => op switch
    {
        UnaryOp.Log or UnaryOp.Sqrt or UnaryOp.Rsqrt or UnaryOp.Pow => (0.1f, 3f),
        _ => (-4f, 4f),
    };

    public static TheoryData<UnaryOp> AllUnary()
    {
        var d = new TheoryData<UnaryOp>();
        foreach (var op in Enum.GetValues<UnaryOp>()) d.Add(op);
        return d;
    }

    [Fact]
    public void Unary_PowOfNegativeBaseWithIntegerExponent()
    {
        float[] x = [-2f, -3f, 1.5f, -0.5f, 0f, 4f, -1f, 2f, -2.5f];
        var y = new float[x.Length];
        fixed (float* px = x, py = y) Cpu.Unary(UnaryOp.Pow, px, py, x.Length, 2f);
        for (int i = 0; i < x.Length; i++) Assert.Equal(x[i] * x[i], y[i], 5);
    }

    [Fact]
    public void Reference_UnaryBackward_HandValues()
    {
        float[] x = [0f, 1f, -2f];
        var y = new float[3];
        float[] g = [1f, 1f, 1f];
        var d = new float[3];
        fixed (float* px = x, py = y, pg = g, pd = d)
        {
            Ref.Unary(UnaryOp.Silu, px, py, 3, 0);
            Ref.UnaryBackward(UnaryOp.Silu, px, py, pg, pd, 3, 0);
        }
        // silu'(0) = 0.5; silu'(1) = σ(1)(1 + 1·(1 − σ(1)))
        double s1 = 1 / (1 + Math.Exp(-1));
        Assert.Equal(0.5, d[0], 6);
        Assert.Equal(s1 * (1 + (1 - s1)), d[1], 6);
        Assert.Equal(1 * s1, y[1], 6);
    }

    // (shape, aStrides, bStrides): contiguous, broadcast rows/columns/scalars, transposed, rank 0 and 4.
    public static IEnumerable<(int[] shape, long[] a, long[] b)> Layouts()
    {
        foreach (int n in Sizes) yield return ([n], [1], [1]);
        yield return ([13], [1], [0]);
        yield return ([4099], [0], [1]);
        yield return ([], [], []);
        yield return ([1, 1], [0, 0], [1, 1]);
        yield return ([5, 3], [0, 0], [0, 0]);
        yield return ([31, 7], [7, 1], [0, 1]);        // b is a row broadcast over rows
        yield return ([31, 7], [1, 0], [7, 1]);        // a is a column broadcast over columns
        yield return ([127, 1021], [1021, 1], [0, 1]); // parallel, row broadcast
        yield return ([127, 1021], [1, 0], [0, 1]);    // outer product layout
        yield return ([13, 31], [1, 13], [31, 1]);     // a is transposed storage
        yield return ([2, 3, 5, 7], [105, 35, 7, 1], [0, 7, 0, 1]);
        yield return ([2, 3, 5, 7], [0, 5, 1, 0], [105, 35, 7, 1]);
        yield return ([3, 1, 4099], [4099, 0, 1], [0, 0, 1]);
        yield return ([2, 2, 2, 2, 2, 2, 2, 3], [96, 48, 24, 12, 6, 3, 1, 0], [0, 1, 0, 2, 0, 4, 0, 8]);
    }

    [Fact]
    public void Binary_MaximumMinimum_PropagateNaN()
    {
        float[] a = [1f, float.NaN, 3f, -1f, 5f, 6f, 7f, 8f, 9f, 10f, 11f, 12f, 13f, 14f, 15f, 16f, 17f];
        var b = new float[a.Length];
        b[3] = float.NaN;
        var c = new float[a.Length];
        fixed (float* pa = a, pb = b, pc = c)
        {
            Cpu.Binary(BinaryOp.Maximum, pa, [1L], pb, [1L], pc, [a.Length]);
            Assert.True(float.IsNaN(c[1]) && float.IsNaN(c[3]));
            Assert.Equal(0f, c[0] - 1f);
            Cpu.Binary(BinaryOp.Minimum, pa, [1L], pb, [1L], pc, [a.Length]);
            Assert.True(float.IsNaN(c[1]) && float.IsNaN(c[3]));
        }
    }

    public static IEnumerable<(int[] shape, long[] dst)> AccumulateLayouts()
    {
        yield return ([65537], [1]);
        yield return ([65537], [0]);
        yield return ([1], [0]);
        yield return ([], []);
        yield return ([1021, 127], [0, 1]);   // bias gradient: sum over rows (column-parallel)
        yield return ([127, 1021], [1, 0]);   // sum over the last axis
        yield return ([127, 1021], [1021, 1]); // plain add
        yield return ([31, 13], [1, 31]);     // transposed destination
        yield return ([2, 3, 5, 7], [0, 7, 0, 1]);
        yield return ([2, 3, 5, 7], [5, 0, 1, 0]);
        yield return ([13, 7], [0, 0]);
    }

    public static IEnumerable<(int[] shape, long[] src, long[] dst)> CopyLayouts()
    {
        yield return ([65537], [1], [1]);
        yield return ([7], [0], [1]);
        yield return ([], [], []);
        yield return ([13, 31], [1, 13], [31, 1]);           // transpose
        yield return ([31, 13], [13, 1], [1, 31]);           // transpose into strided dst
        yield return ([5, 7], [0, 1], [14, 2]);              // broadcast rows into a gapped dst
        yield return ([2, 3, 5, 7], [105, 7, 21, 1], [105, 35, 7, 1]); // swap two middle axes
        yield return ([4, 1, 4099], [4099, 0, 1], [4099, 4099, 1]);
        yield return ([127, 1021], [1, 127], [1021, 1]);    // big transpose (parallel)
    }

    [Fact]
    public void Reference_StridedCopy_Transposes()
    {
        float[] src = [1, 2, 3, 4, 5, 6]; // [2, 3]
        var dst = new float[6];           // [3, 2]
        fixed (float* ps = src, pd = dst)
            Ref.StridedCopy((byte*)ps, [1L, 3L], (byte*)pd, [2L, 1L], [3, 2], 4);
        Assert.Equal([1f, 4f, 2f, 5f, 3f, 6f], dst);
    }
}
