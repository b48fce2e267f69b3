using NativeReasoner.Kernels;
using NativeReasoner.Kernels.Cpu;
using NativeReasoner.Kernels.Reference;
using NativeReasoner.Model;
using Xunit;

namespace NativeReasoner.Tests.Ops;

/// <summary>
/// The SwiGLU MLP's inference path (no grad: one fused silu·up pass) against its training path (silu, then a
/// multiply, recorded for autograd): on the CPU the fused kernel does the same float operations, so the two agree
/// bit for bit, tails of fewer than a vector included (except spans shorter than 4, which TensorPrimitives gives
/// to the scalar exp: 1e-6 there); and both stay within 1e-6 of the double-precision reference.
/// </summary>
public sealed unsafe class SiluMulInferenceTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(15)]
    [InlineData(17)]
    [InlineData(31)]
    [InlineData(1031)]
    [InlineData(70001)]
    public void Fused_kernel_equals_silu_then_multiply_bit_for_bit_and_the_reference_to_1e6(int n)
    {
        var rng = new Random(n);
        var g = new float[n];
        var u = new float[n];
        for (int i = 0; i < n; i++)
        {
            g[i] = (float)(rng.NextDouble() * 24 - 12);
            u[i] = (float)(rng.NextDouble() * 4 - 2);
        }
        var fused = new float[n];
        var inPlace = (float[])g.Clone();
        var silu = new float[n];
        var unfused = new float[n];
        var reference = new float[n];
        fixed (float* pg = g, pu = u, pf = fused, pi = inPlace, ps = silu, pn = unfused, pr = reference)
        {
            CpuKernels.Instance.SiluMul(pg, pu, pf, n);
            CpuKernels.Instance.SiluMul(pi, pu, pi, n); // y aliasing gate, as an in-place caller would
            CpuKernels.Instance.Unary(UnaryOp.Silu, pg, ps, n, 0f);
            for (int i = 0; i < n; i++) pn[i] = ps[i] * pu[i];
            ReferenceKernels.Instance.SiluMul(pg, pu, pr, n);
        }
        for (int i = 0; i < n; i++)
        {
            // TensorPrimitives computes a span shorter than 4 with the scalar exp, which rounds differently.
            if (n >= 4)
                Assert.True(BitConverter.SingleToInt32Bits(fused[i]) == BitConverter.SingleToInt32Bits(unfused[i]),
                    $"n = {n}, element {i}: fused {fused[i]:R}, silu then multiply {unfused[i]:R}");
            Assert.True(Math.Abs(fused[i] - unfused[i]) <= 1e-6 * Math.Abs(unfused[i]) + 1e-30,
                $"n = {n}, element {i}: fused {fused[i]:R}, silu then multiply {unfused[i]:R}");
            Assert.Equal(fused[i], inPlace[i]);
            Assert.True(Math.Abs(fused[i] - reference[i]) <= 1e-6 * Math.Abs(reference[i]) + 1e-30,
                $"n = {n}, element {i}: fused {fused[i]:R}, reference {reference[i]:R}");
        }
    }

    [Fact]
    public void SwiGlu_inference_path_matches_the_training_path_exactly()
    {
        var gen = new Generator(21);
        using var scope = new TensorScope();
        using var mlp = new SwiGluMlp(24, 1031, gen, Device.Cpu);
        var x = Tensor.Randn([3, 5, 24], gen, 1f, Device.Cpu);
        float[] training = mlp.Forward(x).ToArray();
        Assert.True(mlp.GateProj.Weight.RequiresGrad, "the training path needs parameters that take gradients");
        float[] inference;
        using (Tensor.NoGrad()) inference = mlp.Forward(x).ToArray();
        Assert.Equal(training.Length, inference.Length);
        for (int i = 0; i < training.Length; i++)
        {
            Assert.False(float.IsNaN(inference[i]), $"element {i} is NaN");
            Assert.True(BitConverter.SingleToInt32Bits(training[i]) == BitConverter.SingleToInt32Bits(inference[i]),
                $"element {i}: training path {training[i]:R}, inference path {inference[i]:R}");
        }
    }
}
