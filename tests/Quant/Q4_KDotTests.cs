using NativeReasoner.Kernels.Cpu;
using NativeReasoner.Kernels.Cpu.Quant;
using NativeReasoner.Kernels.Quant;
using NativeReasoner.Kernels.Reference;
using Xunit;

namespace NativeReasoner.Tests.Quant;

/// <summary>
/// The Q4_K integer dots on every code path this CPU runs, at decode sizes (1 and 3 rows of x, N odd, K = 256 ×
/// odd super-block counts up to the 1.5B shape's 35), on blocks of random bytes: every 6-bit scale and min pattern
/// the packing can hold (high bits included, which the quantiser seldom writes), not only quantiser output. Each
/// path is held to the fp32 reference by the int8-activation bound of the conformance suite, and to the scalar
/// path (exact integer dots, so only the order of the float sums differs) at 1e-5 of Σ|x·w|.
/// </summary>
public sealed unsafe class Q4_KDotTests
{
    public static IEnumerable<object[]> Isas() =>
        Enum.GetValues<QuantIsa>().Select(isa => new object[] { isa.ToString() });

    [Theory]
    [MemberData(nameof(Isas))]
    public void Every_path_is_within_the_int8_bound_of_the_reference_and_matches_the_scalar_path(string isaName)
    {
        var isa = Enum.Parse<QuantIsa>(isaName);
        if (!QuantIsas.Supported(isa)) return; // nothing to run on a CPU without it
        var rng = new Random(11);
        foreach (var (m, n, superBlocks) in new[] { (1, 37, 1), (3, 7, 3), (1, 33, 19), (3, 5, 35), (1, 1, 5) })
        {
            int k = Q4_KBlock.Size * superBlocks;
            byte[] packed = RandomQ4_KRows(rng, n, k);
            var x = new float[m * k];
            for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
            // One block of activations near zero and one with a single large value: extreme per-block scales.
            for (int i = 0; i < 32; i++) x[i] *= 1e-6f;
            x[Math.Min(x.Length - 1, 40)] = 50f;
            var expected = new float[m * n];
            var scalar = new float[m * n];
            var actual = new float[m * n];
            fixed (float* px = x, pe = expected, ps = scalar, pa = actual)
            fixed (byte* pw = packed)
            {
                ReferenceKernels.Instance.QuantizedMatMul(QuantFormat.Q4_K, m, n, k, px, pw, pe);
                CpuKernels.Instance.QuantizedMatMul(QuantIsa.Scalar, QuantFormat.Q4_K, m, n, k, px, pw, ps);
                CpuKernels.Instance.QuantizedMatMul(isa, QuantFormat.Q4_K, m, n, k, px, pw, pa);
            }
            float[] wf = BlockQuantizer.Dequantize(QuantFormat.Q4_K, packed, n, k);
            for (int r = 0; r < m; r++)
                for (int c = 0; c < n; c++)
                {
                    double bound = 0, magnitude = 0;
                    for (int b = 0; b < k / 32; b++)
                    {
                        double amax = 0, wabs = 0;
                        for (int i = b * 32; i < b * 32 + 32; i++)
                        {
                            amax = Math.Max(amax, Math.Abs(x[r * k + i]));
                            wabs += Math.Abs(wf[(long)c * k + i]);
                            magnitude += Math.Abs((double)x[r * k + i] * wf[(long)c * k + i]);
                        }
                        bound += amax / 127 / 2 * wabs;
                    }
                    int at = r * n + c;
                    string what = $"{isa} q4_k {m}x{n}x{k} y[{r}, {c}]";
                    Assert.True(!float.IsNaN(actual[at]), $"{what} is NaN");
                    double err = Math.Abs((double)actual[at] - expected[at]);
                    Assert.True(err <= bound * 1.001 + 1e-5 * magnitude,
                        $"{what} = {actual[at]}, reference {expected[at]}: error {err:E3} beyond the bound {bound:E3}");
                    Assert.True(Math.Abs((double)actual[at] - scalar[at]) <= 1e-5 * magnitude + 1e-30,
                        $"{what} = {actual[at]}, scalar path {scalar[at]} (Σ|x·w| {magnitude:E3})");
                }
        }
    }

    /// <summary>Rows of random bytes with sane fp16 d and dmin (2⁻¹⁰ … 2⁻⁶, dmin ≥ 0 as the format has it).</summary>
    private static byte[] RandomQ4_KRows(Random rng, int rows, int k)
    {
        var bytes = new byte[rows * QuantFormat.Q4_K.RowBytes(k)];
        rng.NextBytes(bytes);
        for (int b = 0; b < bytes.Length / Q4_KBlock.Bytes; b++)
            foreach (int offset in new[] { 0, 2 })
            {
                ushort bits = BitConverter.HalfToUInt16Bits((Half)Math.Pow(2, -10 + 4 * rng.NextDouble()));
                bytes[b * Q4_KBlock.Bytes + offset] = (byte)bits;
                bytes[b * Q4_KBlock.Bytes + offset + 1] = (byte)(bits >> 8);
            }
        return bytes;
    }
}
