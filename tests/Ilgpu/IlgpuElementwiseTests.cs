using NativeReasoner.Kernels;
using Xunit;
using static NativeReasoner.Tests.Ilgpu.DeviceArena;
using static NativeReasoner.Tests.Ilgpu.IlgpuTestUtil;

namespace NativeReasoner.Tests.Ilgpu;

/// <summary>IlgpuKernels vs ReferenceKernels: memory, conversions, elementwise and broadcast ops.</summary>
public sealed unsafe class IlgpuElementwiseTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(1031)]
    public void Fill(int n)
    {
        using var d = new DeviceArena();
        var y = d.Alloc<float>(n);
        K.Fill(y, n, -2.5f);
        Assert.All(d.Down(y, n), v => Assert.Equal(-2.5f, v));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(8)]
    public void StridedCopy(int elementSize)
    {
        var rng = new Random(elementSize);
        // A transposed, broadcast source into a strided destination; then rank 0.
        var cases = new (int[] shape, long[] src, long[] dst)[]
        {
            ([3, 5, 7], [1, 3, 15], [70, 14, 2]),
            ([4, 13], [0, 1], [13, 1]),
            ([], [], []),
        };
        foreach (var (shape, ss, ds) in cases)
        {
            long srcExtent = Extent(shape, ss), dstExtent = Extent(shape, ds);
            var src = new byte[srcExtent * elementSize];
            rng.NextBytes(src);
            var expected = new byte[dstExtent * elementSize];
            rng.NextBytes(expected);
            var init = (byte[])expected.Clone();
            using var d = new DeviceArena();
            var dsrc = d.Up(src);
            var ddst = d.Up(init);
            fixed (byte* s = src, e = expected) Ref.StridedCopy(s, ss, e, ds, shape, elementSize);
            K.StridedCopy(dsrc, ss, ddst, ds, shape, elementSize);
            Exact<byte>(d.Down(ddst, init.Length), expected, $"strided copy {string.Join("x", shape)} of {elementSize}-byte elements");
        }
    }

    private static long Extent(int[] shape, long[] strides)
    {
        long e = 1;
        for (int a = 0; a < shape.Length; a++) e += (shape[a] - 1) * strides[a];
        return e;
    }

    /// <summary>Ordinary values plus the edges: ±0, ±inf, NaN, subnormals, half overflow and rounding ties.</summary>
    private static float[] ConversionInputs()
    {
        var rng = new Random(5);
        var v = new List<float> { 0f, -0f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, 1e-45f, -3e-39f,
            65504f, 65520f, 65519.99f, 1e6f, -1e6f, 5.96e-8f, 2.98e-8f, 2.9802322e-8f, 3e-8f, 6.1e-5f, 1f + 1f / 1024 / 2, 1.00390625f, 3.0e38f };
        for (int i = 0; i < 1011; i++) v.Add((float)((rng.NextDouble() - 0.5) * Math.Pow(2, rng.Next(-30, 30))));
        return v.ToArray();
    }

    [Fact]
    public void Conversions()
    {
        var x = ConversionInputs();
        int n = x.Length;
        using var d = new DeviceArena();
        var dx = d.Up(x);
        var hb = new ushort[n];
        var hh = new ushort[n];
        fixed (float* px = x) fixed (ushort* pb = hb, ph = hh)
        {
            Ref.FloatToBFloat16(px, pb, n);
            Ref.FloatToHalf(px, ph, n);
        }
        var db = d.Alloc<ushort>(n);
        var dh = d.Alloc<ushort>(n);
        K.FloatToBFloat16(dx, db, n);
        K.FloatToHalf(dx, dh, n);
        Exact<ushort>(d.Down(db, n), hb, "float → bf16");
        Exact<ushort>(d.Down(dh, n), hh, "float → half");

        // Back again, from every bit pattern of interest (the reference's outputs).
        var fb = new float[n];
        var fh = new float[n];
        fixed (ushort* pb = hb, ph = hh) fixed (float* qb = fb, qh = fh)
        {
            Ref.BFloat16ToFloat(pb, qb, n);
            Ref.HalfToFloat(ph, qh, n);
        }
        var ob = d.Alloc<float>(n);
        var oh = d.Alloc<float>(n);
        K.BFloat16ToFloat(db, ob, n);
        K.HalfToFloat(dh, oh, n);
        ExactBits(d.Down(ob, n), fb, "bf16 → float");
        ExactBits(d.Down(oh, n), fh, "half → float");

        // Every half bit pattern.
        var all = Enumerable.Range(0, 65536).Select(i => (ushort)i).ToArray();
        var fall = new float[all.Length];
        fixed (ushort* pa = all) fixed (float* pf = fall) Ref.HalfToFloat(pa, pf, all.Length);
        var dall = d.Up(all);
        var oall = d.Alloc<float>(all.Length);
        K.HalfToFloat(dall, oall, all.Length);
        ExactBits(d.Down(oall, all.Length), fall, "every half → float");
    }

    private static void ExactBits(float[] actual, float[] expected, string what)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            bool same = BitConverter.SingleToUInt32Bits(actual[i]) == BitConverter.SingleToUInt32Bits(expected[i])
                || (float.IsNaN(actual[i]) && float.IsNaN(expected[i]));
            Assert.True(same, $"{what}: mismatch at {i}: {actual[i]:G9} vs {expected[i]:G9}");
        }
    }

    [Fact]
    public void IntegerConversions()
    {
        var longs = new long[] { 0, 1, -1, 7, long.MaxValue, long.MinValue, 1L << 40, -(1L << 33) + 5, int.MaxValue, int.MinValue, 151_935, 16_777_217 };
        var floats = new float[] { 0f, -0.5f, 0.99f, -1.99f, 3e9f, -3e9f, float.NaN, 1e19f, -1e19f, float.PositiveInfinity, 12345.67f, 9.2233715e18f };
        var ints = new int[] { 0, -1, int.MaxValue, int.MinValue, 42, 7 };
        using var d = new DeviceArena();
        var dl = d.Up(longs);
        var df = d.Up(floats);
        var di = d.Up(ints);
        var ef = new float[longs.Length];
        var el = new long[floats.Length];
        var eil = new long[ints.Length];
        var eli = new int[longs.Length];
        fixed (long* pl = longs) fixed (float* pf = floats, qf = ef) fixed (long* ql = el, qil = eil) fixed (int* pi = ints, qli = eli)
        {
            Ref.Int64ToFloat(pl, qf, longs.Length);
            Ref.FloatToInt64(pf, ql, floats.Length);
            Ref.Int32ToInt64(pi, qil, ints.Length);
            Ref.Int64ToInt32(pl, qli, longs.Length);
        }
        var of = d.Alloc<float>(longs.Length);
        var ol = d.Alloc<long>(floats.Length);
        var oil = d.Alloc<long>(ints.Length);
        var oli = d.Alloc<int>(longs.Length);
        K.Int64ToFloat(dl, of, longs.Length);
        K.FloatToInt64(df, ol, floats.Length);
        K.Int32ToInt64(di, oil, ints.Length);
        K.Int64ToInt32(dl, oli, longs.Length);
        Exact<float>(d.Down(of, longs.Length), ef, "int64 → float");
        Exact<long>(d.Down(ol, floats.Length), el, "float → int64");
        Exact<long>(d.Down(oil, ints.Length), eil, "int32 → int64");
        Exact<int>(d.Down(oli, longs.Length), eli, "int64 → int32");
    }

    public static IEnumerable<object[]> UnaryOps() => Enum.GetValues<UnaryOp>().Select(o => new object[] { o });

    [Theory]
    [MemberData(nameof(UnaryOps))]
    public void UnaryAndBackward(UnaryOp op)
    {
        bool positive = op is UnaryOp.Log or UnaryOp.Sqrt or UnaryOp.Rsqrt or UnaryOp.Pow;
        float alpha = op == UnaryOp.Pow ? 2.5f : -1.75f;
        foreach (int n in new[] { 1, 13, 1031 })
        {
            var rng = new Random(n * 31 + (int)op);
            var x = positive ? Rand(rng, n, 0.2f, 3f) : Rand(rng, n, -4f, 4f);
            var dy = Rand(rng, n);
            var y = new float[n];
            var dx = new float[n];
            fixed (float* px = x, py = y, pdy = dy, pdx = dx)
            {
                Ref.Unary(op, px, py, n, alpha);
                Ref.UnaryBackward(op, px, py, pdy, pdx, n, alpha);
            }
            using var d = new DeviceArena();
            var gx = d.Up(x);
            var gy = d.Alloc<float>(n);
            var gdy = d.Up(dy);
            var gdx = d.Alloc<float>(n);
            K.Unary(op, gx, gy, n, alpha);
            Close(d.Down(gy, n), y, Elementwise, $"{op}[{n}]");
            // Backward from the reference's y, so only the derivative is under test.
            var ry = d.Up(y);
            K.UnaryBackward(op, gx, ry, gdy, gdx, n, alpha);
            Close(d.Down(gdx, n), dx, Elementwise, $"{op} backward[{n}]");
        }
    }

    public static IEnumerable<object[]> BinaryOps() => Enum.GetValues<BinaryOp>().Select(o => new object[] { o });

    [Theory]
    [MemberData(nameof(BinaryOps))]
    public void BinaryBroadcast(BinaryOp op)
    {
        var rng = new Random((int)op + 100);
        // c: [7, 5, 13]; a: [7, 1, 13] (stride 0 on the middle axis); b: transposed [13, 5] broadcast over axis 0.
        int[] shape = [7, 5, 13];
        long[] aStrides = [13, 0, 1], bStrides = [0, 1, 5];
        var a = Rand(rng, 7 * 13, -2f, 2f);
        var b = Rand(rng, 13 * 5, 0.5f, 2f);
        if (op is BinaryOp.Maximum or BinaryOp.Minimum)
        {
            a[3] = float.NaN; a[4] = -0f; b[2] = 0f; a[5] = 1f; b[0] = 1f;
        }
        int n = 7 * 5 * 13;
        var c = new float[n];
        fixed (float* pa = a, pb = b, pc = c) Ref.Binary(op, pa, aStrides, pb, bStrides, pc, shape);
        using var d = new DeviceArena();
        var gc = d.Alloc<float>(n);
        K.Binary(op, d.Up(a), aStrides, d.Up(b), bStrides, gc, shape);
        var got = d.Down(gc, n);
        Close(got, c, Elementwise, $"{op}");
        // Signed zeros must come out right too.
        for (int i = 0; i < n; i++)
            Assert.Equal(BitConverter.SingleToUInt32Bits(c[i]) >> 31, BitConverter.SingleToUInt32Bits(got[i]) >> 31);

        // Rank 0 and size 1.
        var s = new float[1];
        fixed (float* pa = a, pb = b, ps = s) Ref.Binary(op, pa, [], pb, [], ps, []);
        var gs = d.Alloc<float>(1);
        K.Binary(op, d.Up(a), [], d.Up(b), [], gs, []);
        Close(d.Down(gs, 1), s, Elementwise, $"{op} rank 0");
    }

    [Fact]
    public void WhereBroadcast()
    {
        var rng = new Random(3);
        int[] shape = [3, 31];
        var cond = Enumerable.Range(0, 31).Select(i => rng.Next(2) == 0 ? 0f : 1f).ToArray();
        var a = Rand(rng, 3 * 31);
        var b = Rand(rng, 3);
        long[] cs = [0, 1], asd = [31, 1], bs = [1, 0];
        var o = new float[93];
        fixed (float* pc = cond, pa = a, pb = b, po = o) Ref.Where(pc, cs, pa, asd, pb, bs, po, shape);
        using var d = new DeviceArena();
        var go = d.Alloc<float>(93);
        K.Where(d.Up(cond), cs, d.Up(a), asd, d.Up(b), bs, go, shape);
        Close(d.Down(go, 93), o, 0, "where");
    }

    [Fact]
    public void AccumulateStrided()
    {
        var rng = new Random(11);
        // Gradient of broadcasting [13, 1, 7] → [13, 31, 7] and of [31] → [5, 31], plus overlapping strides (atomic path).
        var cases = new (int[] shape, long[] dst, long dstLen)[]
        {
            ([13, 31, 7], [7, 0, 1], 13 * 7),
            ([5, 31], [0, 1], 31),
            ([4, 6], [1, 1], 9),
            ([257], [0], 1),
        };
        foreach (var (shape, ds, len) in cases)
        {
            int n = shape.Aggregate(1, (x, y) => x * y);
            var src = Rand(rng, n);
            var dst = Rand(rng, len);
            var expected = (float[])dst.Clone();
            fixed (float* ps = src, pe = expected) Ref.AccumulateStrided(ps, shape, pe, ds);
            using var d = new DeviceArena();
            var gd = d.Up(dst);
            K.AccumulateStrided(d.Up(src), shape, gd, ds);
            Close(d.Down(gd, len), expected, Accumulating, $"accumulate {string.Join("x", shape)}");
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(31)]
    [InlineData(4099)]
    public void SumOfSquares(int n)
    {
        var x = Rand(new Random(n), n);
        double expected;
        fixed (float* p = x) expected = Ref.SumOfSquares(p, n);
        using var d = new DeviceArena();
        double got = K.SumOfSquares(d.Up(x), n);
        Assert.True(Math.Abs(got - expected) <= 1e-9 * Math.Max(1, expected), $"{got} vs {expected}");
    }
}
