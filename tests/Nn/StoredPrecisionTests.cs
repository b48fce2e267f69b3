using NativeReasoner.IO;
using NativeReasoner.Kernels;
using NativeReasoner.Nn;
using Xunit;

namespace NativeReasoner.Tests.Nn;

/// <summary>
/// Weights kept in 16 bits for inference: products with a bfloat16 weight round the float32 operand to bfloat16 and
/// accumulate in fp32 (GemmBf16) on every backend; float16 weights, embedding tables and expert weights are widened
/// at use, so they give exactly the float32 result of the widened weight.
/// </summary>
public sealed class StoredPrecisionTests
{
    public static TheoryData<string> Devices() => ["reference", "cpu", "cuda:emu", "ilgpu"];

    private static float[] Random(int n, int seed)
    {
        var rng = new System.Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
    }

    private static float Bf16(float v) =>
        BitConverter.UInt32BitsToSingle((uint)Fp8BlockDequant.RoundToBFloat16(v) << 16);

    [Theory]
    [MemberData(nameof(Devices))]
    public void Linear_Bf16Weight_IsTheBf16ProductWithFp32Accumulation(string deviceName)
    {
        var device = Device.Parse(deviceName);
        using var scope = new TensorScope();
        // Awkward sizes: K = 37, N = 19, a batch of 2 × 3 rows.
        const int B = 2, M = 3, K = 37, N = 19;
        float[] xs = Random(B * M * K, 1), ws = Random(N * K, 2);
        var x = Tensor.FromArray(xs, [B, M, K], device);
        var w32 = Tensor.FromArray(ws, [N, K], device);
        var w16 = w32.To(DType.BFloat16);
        float[] y = Tensor.Linear(x, w16).ToArray();
        for (int r = 0; r < B * M; r++)
            for (int n = 0; n < N; n++)
            {
                double expected = 0;
                for (int k = 0; k < K; k++) expected += (double)Bf16(xs[r * K + k]) * Bf16(ws[n * K + k]);
                Assert.True(Math.Abs(y[r * N + n] - expected) <= 1e-5 * (1 + Math.Abs(expected)),
                    $"{deviceName} [{r}, {n}]: {y[r * N + n]} vs {expected}");
            }
        // The same rule as autocast over a float32 weight holding the same values: identical bits where both run
        // GemmBf16; a backend with its own packed kernel (CPU, reference) reads the bf16 rows in place there, so the
        // fp32 sums may differ in order.
        using (Autocast.Bf16())
        {
            var wWide = w16.To(DType.Float32);
            float[] autocast = Tensor.Linear(x, wWide).ToArray();
            if (!NativeReasoner.Kernels.Fallback.KernelFallback.Supports(device.Kernels,
                    NativeReasoner.Kernels.Fallback.OptionalOp.QuantizedMatMul))
                Assert.Equal(autocast, y);
            else
                for (int i = 0; i < y.Length; i++)
                    Assert.True(Math.Abs(y[i] - autocast[i]) <= 1e-6 * (1 + Math.Abs(autocast[i])),
                        $"{deviceName} element {i}: {y[i]} vs autocast {autocast[i]}");
        }
    }

    [Fact]
    public void Linear_StoredWeight_FrozenButInputGradientFlows()
    {
        using var scope = new TensorScope();
        var lin = new Linear(5, 3, bias: true, new Generator(3));
        float[] wBefore = lin.Weight.ToArray();
        lin.Weight.StoreAs(DType.BFloat16);
        Assert.Equal(DType.BFloat16, lin.Weight.DType);
        Assert.False(lin.Weight.RequiresGrad);
        Assert.Equal(DType.Float32, lin.Bias!.DType);
        using (var wide = lin.Weight.To(DType.Float32))
            Assert.Equal(wBefore.Select(Bf16).ToArray(), wide.ToArray());

        var x = Tensor.FromArray(Random(10, 4), [2, 5]).RequiresGrad_();
        lin.Forward(x).Sum().Backward();
        // d(sum y)/dx[r, k] = Σ_n W[n, k] (the upstream ones are exact in bf16).
        float[] gx = x.Grad!.ToArray();
        for (int k = 0; k < 5; k++)
        {
            double expected = 0;
            for (int n = 0; n < 3; n++) expected += Bf16(wBefore[n * 5 + k]);
            Assert.Equal(expected, gx[k], 5);
            Assert.Equal(expected, gx[5 + k], 5);
        }
        Assert.Null(lin.Weight.Grad);
    }

    [Fact]
    public void MatMul_Fp16Weight_EqualsTheWidenedProduct()
    {
        using var scope = new TensorScope();
        var x = Tensor.FromArray(Random(4 * 33, 5), [4, 33]);
        var w16 = Tensor.FromArray(Random(7 * 33, 6), [7, 33]).To(DType.Float16);
        var wWide = w16.To(DType.Float32);
        Assert.Equal(Tensor.Linear(x, wWide).ToArray(), Tensor.Linear(x, w16).ToArray());
        var needsGrad = Tensor.FromArray(Random(33, 7), [1, 33]).RequiresGrad_();
        var e = Assert.Throws<InvalidOperationException>(() => Tensor.Linear(needsGrad, w16));
        Assert.Contains("float16 weight", e.Message);
    }

    [Theory]
    [InlineData("cpu", DType.BFloat16, 6)]
    [InlineData("reference", DType.BFloat16, 6)]
    [InlineData("cpu", DType.Float16, 6)]
    [InlineData("cpu", DType.BFloat16, 5)] // odd width: the table is widened whole
    [InlineData("cuda:emu", DType.BFloat16, 6)]
    public void Embedding_StoredTable_EqualsTheWidenedTable(string deviceName, DType dtype, int width)
    {
        var device = Device.Parse(deviceName);
        using var scope = new TensorScope();
        var table = Tensor.FromArray(Random(11 * width, 8), [11, width], device).To(dtype);
        var wide = table.To(DType.Float32);
        var ids = Tensor.FromArray(new long[] { 3, 0, 10, 3, 7, 1 }, [2, 3], device);
        var y = Functional.Embedding(ids, table);
        Assert.Equal([2, 3, width], y.Shape.ToArray());
        Assert.Equal(Functional.Embedding(ids, wide).ToArray(), y.ToArray());
        var bad = Tensor.FromArray(new long[] { 11 }, [1, 1], device);
        Assert.Throws<ArgumentOutOfRangeException>(() => Functional.Embedding(bad, table));
    }

    [Fact]
    public void GroupedSwiGlu_StoredExperts_EqualTheWidenedExperts()
    {
        using var scope = new TensorScope();
        const int E = 4, d = 6, I = 5;
        Tensor[] Experts(int rows, int cols, int seed) => Enumerable.Range(0, E)
            .Select(e => Tensor.FromArray(Random(rows * cols, seed + e), [rows, cols]).To(DType.BFloat16)).ToArray();
        var gate = Experts(I, d, 10);
        var up = Experts(I, d, 20);
        var down = Experts(d, I, 30);
        var xs = Tensor.FromArray(Random(7 * d, 40), [7, d]);
        int[] offsets = [0, 3, 3, 7, 7]; // experts 1 and 3 get no rows
        var y = Functional.GroupedSwiGlu(xs, offsets, gate, up, down).ToArray();
        var wide = (Tensor[] ws) => ws.Select(w => w.To(DType.Float32)).ToArray();
        // bf16 experts multiply as a bf16 weight does in MatMul (activations rounded to bf16, fp32 accumulation): the
        // widened experts under autocast, bit for bit.
        float[] widened;
        using (Autocast.Bf16())
            widened = Functional.GroupedSwiGlu(xs, offsets, wide(gate), wide(up), wide(down)).ToArray();
        Assert.Equal(widened, y);
    }
}
