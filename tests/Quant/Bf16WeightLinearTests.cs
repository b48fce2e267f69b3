using NativeReasoner.Kernels;
using NativeReasoner.Kernels.Quant;
using NativeReasoner.Nn;
using Xunit;

namespace NativeReasoner.Tests.Quant;

/// <summary>
/// Decode products with a stored bf16 weight (a tied head of a quantised model, a bf16 checkpoint's matrices)
/// take the packed-bf16 kernel on activations rounded to bf16: the bf16 rule of MatMul, up to the order of the fp32
/// sums. Checked against a double product of the rounded operands, against the same weight packed as bf16 on the
/// rounded activations (bit for bit), and against the GemmBf16 path it replaces, which autocast and products that
/// record a gradient still take.
/// </summary>
public sealed class Bf16WeightLinearTests
{
    private static float Bf16(float v) => BitConverter.UInt32BitsToSingle(
        (BitConverter.SingleToUInt32Bits(v) + 0x7FFF + ((BitConverter.SingleToUInt32Bits(v) >> 16) & 1)) & 0xFFFF0000);

    private static (float[] X, float[] W) Operands(int m, int n, int k, int seed)
    {
        var rng = new Random(seed);
        var x = new float[m * k];
        var w = new float[n * k];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        for (int i = 0; i < w.Length; i++) w[i] = Bf16((float)(rng.NextDouble() * 0.2 - 0.1));
        return (x, w);
    }

    /// <summary>y = x · Wᵀ in double, on the given (already bf16-valued) weights.</summary>
    private static double[] Product(float[] x, float[] w, int m, int n, int k)
    {
        var y = new double[m * n];
        for (int r = 0; r < m; r++)
            for (int c = 0; c < n; c++)
            {
                double s = 0;
                for (int p = 0; p < k; p++) s += (double)x[r * k + p] * w[c * k + p];
                y[r * n + c] = s;
            }
        return y;
    }

    private static void Close(float[] actual, double[] expected, double tol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < actual.Length; i++)
            Assert.True(float.IsFinite(actual[i])
                && Math.Abs(actual[i] - expected[i]) <= tol * (1 + Math.Abs(expected[i])),
                $"{what} element {i}: {actual[i]} vs {expected[i]}");
    }

    public static TheoryData<string, int, int, int> Sizes()
    {
        var data = new TheoryData<string, int, int, int>();
        // Decode (1, 3 rows: the rows kernel) and prefill (17 rows: dequantised panels into the SGEMM); K odd and not
        // a multiple of the 16- or 32-wide loops, N odd.
        foreach (var device in new[] { "cpu", "reference" })
            foreach (int m in new[] { 1, 3, 17 })
                data.Add(device, m, 37, 70);
        data.Add("cpu", 2, 131, 513);
        return data;
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Inference_product_is_the_bf16_rule_and_equals_the_packed_bf16_weight(string deviceName,
        int m, int n, int k)
    {
        var device = Device.Parse(deviceName);
        var (x, w) = Operands(m, n, k, seed: m * 1000 + n);
        var xRounded = x.Select(Bf16).ToArray();
        using var xt = Tensor.FromArray(x.AsSpan(), [m, k], device);
        using var xr = Tensor.FromArray(xRounded.AsSpan(), [m, k], device);
        using var w32 = Tensor.FromArray(w.AsSpan(), [n, k], device);
        using var stored = w32.To(DType.BFloat16);
        using var packed = new Parameter(w32, requiresGrad: false);
        packed.StoreAsPacked(QuantFormat.BF16);
        Assert.Equal(DType.BFloat16, stored.DType);

        float[] viaStored, viaPacked;
        using (Tensor.NoGrad())
        {
            using var y = Tensor.Linear(xt, stored);
            using var yp = Tensor.Linear(xr, packed);
            viaStored = y.ToArray();
            viaPacked = yp.ToArray();
            Assert.Equal([m, n], y.Shape);
        }
        // Exact products of bf16 values, accumulated in fp32.
        Close(viaStored, Product(xRounded, w, m, n, k), 2e-6 * Math.Sqrt(k), $"{deviceName} {m}x{n}x{k}");
        // Decode (< 16 rows) runs the very kernel of the packed weight; prefill stays on GemmBf16 (another blocking).
        if (m < 16) Assert.Equal(viaPacked, viaStored);
        else Close(viaStored, viaPacked.Select(v => (double)v).ToArray(), 1e-6, $"{deviceName} {m} rows");
    }

    [Fact]
    public void Rank1_input_and_bias_are_applied()
    {
        const int n = 9, k = 40;
        var (x, w) = Operands(1, n, k, seed: 3);
        var b = Enumerable.Range(0, n).Select(i => 0.5f * i).ToArray();
        using var xt = Tensor.FromArray(x, [k]);
        using var w32 = Tensor.FromArray(w, [n, k]);
        using var stored = w32.To(DType.BFloat16);
        using var bias = Tensor.FromArray(b, [n]);
        using var noGrad = Tensor.NoGrad();
        using var y = Tensor.Linear(xt, stored, bias);
        Assert.Equal([n], y.Shape);
        var expected = Product(x.Select(Bf16).ToArray(), w, 1, n, k).Select((v, i) => v + b[i]).ToArray();
        Close(y.ToArray(), expected, 1e-5, "rank-1 with bias");
    }

    [Fact]
    public void Autocast_and_gradient_products_take_the_bf16_gemm_with_the_same_rule()
    {
        const int m = 3, n = 11, k = 48;
        var (x, w) = Operands(m, n, k, seed: 11);
        // Random activations differ from their bf16 rounding, so a path that skipped the rounding would show.
        var rounded = Product(x.Select(Bf16).ToArray(), w, m, n, k);
        var plain = Product(x, w, m, n, k);
        Assert.True(rounded.Zip(plain, (a, b) => Math.Abs(a - b)).Max() > 1e-4, "test operands too easy");
        float[] inference;
        using (Tensor.NoGrad())
        {
            using var xt = Tensor.FromArray(x, [m, k]);
            using var w16 = Tensor.FromArray(w, [n, k]).To(DType.BFloat16);
            using var y = Tensor.Linear(xt, w16);
            inference = y.ToArray();
            Close(inference, rounded, 1e-5, "inference");
        }

        using var w32 = Tensor.FromArray(w, [n, k]);
        using var stored = w32.To(DType.BFloat16);
        using (Tensor.NoGrad())
        using (Autocast.Bf16())
        {
            using var xt = Tensor.FromArray(x, [m, k]);
            using var y = Tensor.Linear(xt, stored);
            Close(y.ToArray(), rounded, 1e-5, "under autocast");
            Close(y.ToArray(), inference.Select(v => (double)v).ToArray(), 1e-6, "autocast vs inference");
        }
        using var xg = Tensor.FromArray(x, [m, k]);
        xg.RequiresGrad_();
        using var yg = Tensor.Linear(xg, stored);
        Close(yg.ToArray(), rounded, 1e-5, "recording a gradient");
        using var loss = yg.Sum();
        loss.Backward();
        Assert.NotNull(xg.Grad);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(37)]
    [InlineData(70)]
    [InlineData(513)]
    public void Bf16_rows_widen_exactly_past_the_vector_width(int k)
    {
        // The vectorised widening of a bf16 row (the prefill panels of a bf16 weight) against the bits' definition.
        var rng = new Random(k);
        var bits = new ushort[k];
        for (int i = 0; i < k; i++) bits[i] = (ushort)rng.Next(0, 65536);
        bits[0] = 0xFF80; // −∞ and a NaN pattern widen like any other bits
        if (k > 1) bits[1] = 0x7FC1;
        var row = System.Runtime.InteropServices.MemoryMarshal.AsBytes(bits.AsSpan()).ToArray();
        var y = new float[k];
        BlockQuantizer.DequantizeRow(QuantFormat.BF16, row, y);
        for (int i = 0; i < k; i++)
            Assert.Equal((uint)bits[i] << 16, BitConverter.SingleToUInt32Bits(y[i]));
    }
}
