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

}
