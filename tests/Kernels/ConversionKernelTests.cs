using Xunit;
using static NativeReasoner.Tests.Kernels.KernelTestUtil;

namespace NativeReasoner.Tests.Kernels;

public unsafe class ConversionKernelTests
{
    /// <summary>Random floats over many magnitudes plus the special values.</summary>
    private static float[] Mixed(Random rng, int n)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++)
            x[i] = (float)((rng.NextDouble() - 0.5) * Math.Pow(10, rng.Next(-8, 8)));
        float[] specials = [0f, -0f, float.NaN, float.PositiveInfinity, float.NegativeInfinity, float.MaxValue,
            float.Epsilon, 65504f, 65520f, 1e-7f, BitConverter.UInt32BitsToSingle(0x3F808000), BitConverter.UInt32BitsToSingle(0x7F800001)];
        for (int i = 0; i < Math.Min(n, specials.Length); i++) x[(i * 7919) % n] = specials[i];
        return x;
    }

    [Fact]
    public void BFloat16_RoundTrip_MatchesReference()
    {
        var rng = new Random(800);
        foreach (int n in Sizes)
        {
            var x = Mixed(rng, n);
            var br = new ushort[n];
            var bc = new ushort[n];
            var fr = new float[n];
            var fc = new float[n];
            fixed (float* px = x, pfr = fr, pfc = fc)
            fixed (ushort* pbr = br, pbc = bc)
            {
                Ref.FloatToBFloat16(px, pbr, n);
                Cpu.FloatToBFloat16(px, pbc, n);
                Ref.BFloat16ToFloat(pbr, pfr, n);
                Cpu.BFloat16ToFloat(pbr, pfc, n);
            }
            AssertExact<ushort>(bc, br, $"f32→bf16 n={n}");
            for (int i = 0; i < n; i++)
                Assert.Equal(BitConverter.SingleToUInt32Bits(fr[i]), BitConverter.SingleToUInt32Bits(fc[i]));
        }
    }

    [Fact]
    public void Reference_BFloat16_RoundsToNearestEven()
    {
        float[] x =
        [
            1.00390625f,                               // 1 + 2^-8: exactly halfway between 1 and 1 + 2^-7 → even (1.0)
            BitConverter.UInt32BitsToSingle(0x3F818000), // halfway between 0x3F81 and 0x3F82 → even (0x3F82)
            BitConverter.UInt32BitsToSingle(0x3F808001), // just above halfway → up
            1.0f, -2.5f, float.PositiveInfinity,
            BitConverter.UInt32BitsToSingle(0x7F7FFFFF),  // float max rounds to +inf
            BitConverter.UInt32BitsToSingle(0x7F800001),  // signalling NaN with payload only in the low half
        ];
        var y = new ushort[x.Length];
        fixed (float* px = x)
        fixed (ushort* py = y)
            Ref.FloatToBFloat16(px, py, x.Length);
        Assert.Equal(0x3F80, y[0]);
        Assert.Equal(0x3F82, y[1]);
        Assert.Equal(0x3F81, y[2]);
        Assert.Equal(0x3F80, y[3]);
        Assert.Equal(0xC020, y[4]);
        Assert.Equal(0x7F80, y[5]);
        Assert.Equal(0x7F80, y[6]);
        Assert.True((y[7] & 0x7F80) == 0x7F80 && (y[7] & 0x7F) != 0, "NaN must stay NaN");
    }

    [Fact]
    public void Half_RoundTrip_MatchesReference()
    {
        var rng = new Random(801);
        foreach (int n in Sizes)
        {
            var x = Mixed(rng, n);
            var hr = new ushort[n];
            var hc = new ushort[n];
            var fr = new float[n];
            var fc = new float[n];
            fixed (float* px = x, pfr = fr, pfc = fc)
            fixed (ushort* phr = hr, phc = hc)
            {
                Ref.FloatToHalf(px, phr, n);
                Cpu.FloatToHalf(px, phc, n);
                Ref.HalfToFloat(phr, pfr, n);
                Cpu.HalfToFloat(phr, pfc, n);
            }
            for (int i = 0; i < n; i++)
            {
                // NaN payloads may differ between conversion paths; NaN-ness may not.
                if (float.IsNaN(x[i])) Assert.True(Half.IsNaN(BitConverter.UInt16BitsToHalf(hc[i])));
                else Assert.Equal(hr[i], hc[i]);
            }
            AssertClose(fc, fr, 0, $"f16→f32 n={n}");
        }
        float[] k = [1f, 65520f, 1.00048828125f];
        var h = new ushort[3];
        fixed (float* pk = k)
        fixed (ushort* ph = h)
            Ref.FloatToHalf(pk, ph, 3);
        Assert.Equal(0x3C00, h[0]);
        Assert.Equal(0x7C00, h[1]); // overflow → +inf
        Assert.Equal(0x3C00, h[2]); // 1 + 2^-11 is a tie → even
    }

    [Fact]
    public void IntegerConversions_MatchReference()
    {
        var rng = new Random(802);
        foreach (int n in Sizes)
        {
            var l = new long[n];
            var i32 = new int[n];
            var f = new float[n];
            for (int i = 0; i < n; i++)
            {
                l[i] = rng.NextInt64(-5_000_000_000L, 5_000_000_000L);
                i32[i] = rng.Next(int.MinValue, int.MaxValue);
                f[i] = (float)((rng.NextDouble() - 0.5) * 1e6);
            }
            f[0] = float.NaN;
            var fr = new float[n]; var fc = new float[n];
            var lr = new long[n]; var lc = new long[n];
            var l2r = new long[n]; var l2c = new long[n];
            var ir = new int[n]; var ic = new int[n];
            fixed (long* pl = l, plr = lr, plc = lc, pl2r = l2r, pl2c = l2c)
            fixed (int* pi = i32, pir = ir, pic = ic)
            fixed (float* pf = f, pfr = fr, pfc = fc)
            {
                Ref.Int64ToFloat(pl, pfr, n); Cpu.Int64ToFloat(pl, pfc, n);
                Ref.FloatToInt64(pf, plr, n); Cpu.FloatToInt64(pf, plc, n);
                Ref.Int32ToInt64(pi, pl2r, n); Cpu.Int32ToInt64(pi, pl2c, n);
                Ref.Int64ToInt32(pl, pir, n); Cpu.Int64ToInt32(pl, pic, n);
            }
            AssertExact<float>(fc, fr, "i64→f32");
            AssertExact<long>(lc, lr, "f32→i64");
            AssertExact<long>(l2c, l2r, "i32→i64");
            AssertExact<int>(ic, ir, "i64→i32");
            for (int i = 0; i < n; i++) Assert.Equal(i32[i], l2r[i]);
        }
    }
}
