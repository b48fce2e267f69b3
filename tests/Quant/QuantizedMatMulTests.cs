using NativeReasoner.Kernels.Cpu;
using NativeReasoner.Kernels.Cpu.Quant;
using NativeReasoner.Kernels.Quant;
using NativeReasoner.Kernels.Reference;
using Xunit;

namespace NativeReasoner.Tests.Quant;

/// <summary>
/// Every code path of the CPU packed-weight products this machine can run (scalar, AVX2, AVX-VNNI, AVX-512)
/// against the scalar path: the integer dot products are exact, so the paths differ only by the order of the
/// float sums (1e-5). The scalar path itself is checked against the reference in the conformance suite.
/// </summary>
public sealed unsafe class QuantizedMatMulTests
{
    public static IEnumerable<object[]> Cases()
    {
        foreach (var isa in new[] { "Avx2", "AvxVnni", "Avx512" })
            foreach (var format in new[] { QuantFormat.BF16, QuantFormat.Q8_0, QuantFormat.Q4_0, QuantFormat.Q4_K })
                yield return [isa, format];
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Simd_paths_match_the_scalar_path(string isaName, QuantFormat format)
    {
        var isa = Enum.Parse<QuantIsa>(isaName);
        if (!QuantIsas.Supported(isa)) return; // nothing to compare on a CPU without it
        var rng = new Random(5);
        int bs = format == QuantFormat.BF16 ? 1 : format.BlockSize();
        // Odd block counts (the AVX-512 two-block loop's tail), one and many rows of x.
        foreach (var (m, n, blocks) in new[] { (1, 37, 3), (7, 5, 1), (15, 64, 9), (2, 129, 33) })
        {
            int k = bs == 1 ? 16 * blocks + 3 : bs * blocks;
            var x = new float[m * k];
            var w = new float[n * k];
            for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
            for (int i = 0; i < w.Length; i++) w[i] = (float)(rng.NextDouble() * 0.2 - 0.1);
            if (format == QuantFormat.Q8_0) w[0] = -1f; // a level of −127 with |w| = 127 in the unsigned operand
            byte[] packed = BlockQuantizer.Quantize(format, w, n, k);
            var scalar = new float[m * n];
            var simd = new float[m * n];
            fixed (float* px = x, ps = scalar, pv = simd)
            fixed (byte* pw = packed)
            {
                CpuKernels.Instance.QuantizedMatMul(QuantIsa.Scalar, format, m, n, k, px, pw, ps);
                CpuKernels.Instance.QuantizedMatMul(isa, format, m, n, k, px, pw, pv);
            }
            for (int i = 0; i < scalar.Length; i++)
                Assert.True(Math.Abs(simd[i] - scalar[i]) <= 1e-5 * (1 + Math.Abs(scalar[i])),
                    $"{isa} {format.Name()} {m}x{n}x{k} element {i}: {simd[i]} vs scalar {scalar[i]}");
        }
    }

    [Fact]
    public void Decode_path_is_close_to_the_fp32_reference_and_prefill_path_matches_it()
    {
        // Decode (M < 16) quantises activations: within about 1 % of the reference; prefill (M ≥ 16) dequantises
        // the weights and runs fp32: 1e-5.
        var rng = new Random(9);
        const int n = 70, k = 512;
        var w = new float[n * k];
        for (int i = 0; i < w.Length; i++) w[i] = (float)(rng.NextDouble() * 0.2 - 0.1);
        foreach (var format in new[] { QuantFormat.Q8_0, QuantFormat.Q4_0, QuantFormat.Q4_K })
        {
            byte[] packed = BlockQuantizer.Quantize(format, w, n, k);
            foreach (int m in new[] { 1, CpuKernels.IntegerPanelFromRows - 1, CpuKernels.IntegerPanelFromRows })
            {
                var x = new float[m * k];
                for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
                var expected = new float[m * n];
                var actual = new float[m * n];
                fixed (float* px = x, pe = expected, pa = actual)
                fixed (byte* pw = packed)
                {
                    ReferenceKernels.Instance.QuantizedMatMul(format, m, n, k, px, pw, pe);
                    CpuKernels.Instance.QuantizedMatMul(format, m, n, k, px, pw, pa);
                }
                double num = 0, den = 0;
                for (int i = 0; i < expected.Length; i++)
                {
                    num += (actual[i] - expected[i]) * (double)(actual[i] - expected[i]);
                    den += expected[i] * (double)expected[i];
                }
                double rel = Math.Sqrt(num / den);
                Assert.True(m < CpuKernels.IntegerPanelFromRows ? rel < 0.015 : rel < 1e-5,
                    $"{format.Name()} M = {m}: relative error {rel}");
                if (m < CpuKernels.IntegerPanelFromRows) Assert.True(rel > 0, "decode should quantise its activations");
            }
        }
    }
}
