using NativeReasoner.Nn;
using NativeReasoner.Optim;
using NativeReasoner.Tests.Nn;
using Xunit;
using static NativeReasoner.Tests.Optim.OptimTestHelpers;

namespace NativeReasoner.Tests.Optim;

public sealed class AdamWTests
{
    /// <summary>torch.optim.AdamW, written out in double: the oracle for the optimizer.</summary>
    private sealed class ReferenceAdamW(double lr, double beta1, double beta2, double eps, double wd, int n)
    {
        private readonly double[] _m = new double[n];
        private readonly double[] _v = new double[n];
        private int _t;

        public void Step(double[] p, float[] g)
        {
            _t++;
            double bias1 = 1 - Math.Pow(beta1, _t);
            double bias2 = 1 - Math.Pow(beta2, _t);
            for (int i = 0; i < p.Length; i++)
            {
                p[i] -= lr * wd * p[i];
                _m[i] = beta1 * _m[i] + (1 - beta1) * g[i];
                _v[i] = beta2 * _v[i] + (1 - beta2) * g[i] * g[i];
                p[i] -= lr * (_m[i] / bias1) / (Math.Sqrt(_v[i] / bias2) + eps);
            }
        }
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void Several_Steps_Match_The_Reference(string deviceName)
    {
        var device = Device.Parse(deviceName);
        const int n = 7;
        var init = Values(n, 1);
        using var p = NewParameter(init, device, n);
        const float lr = 0.01f, b1 = 0.8f, b2 = 0.95f, eps = 1e-6f, wd = 0.1f;
        using var opt = new AdamW([p], lr, b1, b2, eps, wd);
        var reference = new ReferenceAdamW(lr, b1, b2, eps, wd, n);
        var expected = init.Select(v => (double)v).ToArray();
        for (int step = 1; step <= 5; step++)
        {
            var g = Values(n, 100 + step, scale: step);
            SetGrad(p, g);
            opt.Step();
            reference.Step(expected, g);
            TestDevices.AssertClose(expected, p.ToArray(), atol: 1e-6, rtol: 1e-5, what: $"step {step}");
        }
        Assert.Equal(5, opt.StepCount);
        Assert.Equal(5, opt.ParameterStep(p));
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void Parameter_Without_Grad_Is_Skipped_And_Its_Bias_Correction_Starts_Later(string deviceName)
    {
        var device = Device.Parse(deviceName);
        var initA = Values(3, 2);
        var initB = Values(4, 3);
        using var a = NewParameter(initA, device, 3);
        using var b = NewParameter(initB, device, 4);
        using var opt = new AdamW([a, b], lr: 0.05f);
        var refA = new ReferenceAdamW(0.05f, 0.9f, 0.999f, 1e-8f, 0.01f, 3);
        var refB = new ReferenceAdamW(0.05f, 0.9f, 0.999f, 1e-8f, 0.01f, 4);
        var expA = initA.Select(v => (double)v).ToArray();
        var expB = initB.Select(v => (double)v).ToArray();

        // Step 1: only a has a gradient; b (no grad) must not move, not even by weight decay.
        var g1 = Values(3, 10);
        SetGrad(a, g1);
        opt.Step();
        refA.Step(expA, g1);
        Assert.Equal(initB, b.ToArray());
        Assert.Equal(0, opt.ParameterStep(b));

        // Step 2: both. b's first update uses t = 1 (its own count), as torch's per-parameter state['step'].
        var g2a = Values(3, 11);
        var g2b = Values(4, 12);
        SetGrad(a, g2a);
        SetGrad(b, g2b);
        opt.Step();
        refA.Step(expA, g2a);
        refB.Step(expB, g2b);
        TestDevices.AssertClose(expA, a.ToArray(), atol: 1e-6, what: "a");
        TestDevices.AssertClose(expB, b.ToArray(), atol: 1e-6, what: "b");
        Assert.Equal(2, opt.ParameterStep(a));
        Assert.Equal(1, opt.ParameterStep(b));
        Assert.Equal(2, opt.StepCount);
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void Param_Groups_Use_Their_Own_Lr_And_Weight_Decay(string deviceName)
    {
        var device = Device.Parse(deviceName);
        var initA = Values(5, 4);
        var initB = Values(5, 5);
        using var a = NewParameter(initA, device, 5);
        using var b = NewParameter(initB, device, 5);
        using var opt = new AdamW([new ParamGroup([a]), new ParamGroup([b], learningRate: 0.1f, weightDecay: 0f)],
            lr: 0.01f, weightDecay: 0.5f);
        Assert.Equal(0.01f, opt.ParamGroups[0].LearningRate);
        Assert.Equal(0.5f, opt.ParamGroups[0].WeightDecay);
        Assert.Equal(0.1f, opt.ParamGroups[1].LearningRate);
        var refA = new ReferenceAdamW(0.01f, 0.9f, 0.999f, 1e-8f, 0.5f, 5);
        var refB = new ReferenceAdamW(0.1f, 0.9f, 0.999f, 1e-8f, 0f, 5);
        var expA = initA.Select(v => (double)v).ToArray();
        var expB = initB.Select(v => (double)v).ToArray();
        for (int step = 0; step < 3; step++)
        {
            var ga = Values(5, 20 + step);
            var gb = Values(5, 30 + step);
            SetGrad(a, ga);
            SetGrad(b, gb);
            opt.Step();
            refA.Step(expA, ga);
            refB.Step(expB, gb);
        }
        TestDevices.AssertClose(expA, a.ToArray(), atol: 1e-6, what: "a");
        TestDevices.AssertClose(expB, b.ToArray(), atol: 1e-6, what: "b");

        // Setting the optimizer's rate sets every group's (what a schedule does).
        opt.LearningRate = 0.003f;
        Assert.All(opt.ParamGroups, g => Assert.Equal(0.003f, g.LearningRate));
    }

    [Fact]
    public void Zero_Lr_Changes_Nothing_And_ZeroGrad_Clears()
    {
        var device = Device.Reference;
        var init = Values(4, 6);
        using var p = NewParameter(init, device, 2, 2);
        using var opt = new AdamW([p], lr: 0f);
        SetGrad(p, Values(4, 7));
        opt.Step();
        Assert.Equal(init, p.ToArray());
        opt.ZeroGrad(setToNone: false);
        Assert.Equal(new float[4], p.Grad!.ToArray());
        opt.ZeroGrad();
        Assert.Null(p.Grad);
    }

    [Fact]
    public void Invalid_Arguments_Are_Rejected()
    {
        using var p = NewParameter([1f], Device.Reference, 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamW([p], beta1: 1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamW([p], lr: -1f));
        Assert.Throws<ArgumentException>(() => new AdamW([new ParamGroup([p]), new ParamGroup([p])]));
    }
}
