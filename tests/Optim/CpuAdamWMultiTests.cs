using NativeReasoner.Kernels;
using NativeReasoner.Nn;
using NativeReasoner.Optim;
using Xunit;
using static NativeReasoner.Tests.Optim.OptimTestHelpers;

namespace NativeReasoner.Tests.Optim;

/// <summary>
/// On the CPU, AdamW's multi-tensor path (one threaded job over the concatenated elements of a bucket) must give
/// exactly what the per-tensor path gives: the per-element arithmetic is shared, only the split across threads
/// differs. Many small tensors (as a MoE model's experts) plus large ones, two groups, a parameter that skips steps.
/// </summary>
public sealed class CpuAdamWMultiTests
{
    private static int[] Sizes()
    {
        var sizes = new List<int> { 1, 70_001, 33_000, 5, 16_384 };
        var rng = new Random(11);
        for (int i = 0; i < 600; i++) sizes.Add(1 + rng.Next(300));
        return sizes.ToArray();
    }

    [Fact]
    public void MultiTensorEqualsPerTensorBitForBit()
    {
        Assert.True(Device.Cpu.Kernels is IMultiTensorAdamW, "the CPU backend offers the multi-tensor AdamW");
        int[] sizes = Sizes();
        Parameter[] Make() => sizes.Select((n, i) => NewParameter(Values(n, 5 + i), Device.Cpu, n)).ToArray();
        var a = Make();
        var b = Make();
        AdamW Opt(Parameter[] ps, bool on) => new(
            [new ParamGroup(ps.Take(300), learningRate: 0.01f, weightDecay: 0.1f), new ParamGroup(ps.Skip(300), learningRate: 0.002f, weightDecay: 0f)],
            beta1: 0.85f, beta2: 0.97f, eps: 1e-7f)
        { Foreach = on };
        using var multi = Opt(a, true);
        using var single = Opt(b, false);
        try
        {
            for (int step = 1; step <= 4; step++)
            {
                for (int i = 0; i < sizes.Length; i++)
                {
                    if (i == 2 && step == 2) { a[i].Grad = null; b[i].Grad = null; continue; } // its step count lags from here
                    var g = Values(sizes[i], 1000 * i + step, scale: 0.5f + step);
                    SetGrad(a[i], g);
                    SetGrad(b[i], g);
                }
                multi.Step();
                single.Step();
                for (int i = 0; i < sizes.Length; i++)
                    Assert.True(a[i].ToArray().AsSpan().SequenceEqual(b[i].ToArray()), $"step {step}, parameter {i} ({sizes[i]} elements) differs");
            }
            Assert.Equal(3, multi.ParameterStep(a[2]));
        }
        finally
        {
            foreach (var p in a.Concat(b)) p.Dispose();
        }
    }
}
