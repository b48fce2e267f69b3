using NativeReasoner.Optim;
using NativeReasoner.Tests.Nn;
using Xunit;
using static NativeReasoner.Tests.Optim.OptimTestHelpers;

namespace NativeReasoner.Tests.Optim;

public sealed class SgdTests
{
    /// <summary>torch.optim.SGD, written out in double.</summary>
    private sealed class ReferenceSgd(double lr, double momentum, double dampening, double wd, bool nesterov, int n)
    {
        private readonly double[] _buf = new double[n];
        private bool _first = true;

        public void Step(double[] p, float[] g)
        {
            for (int i = 0; i < p.Length; i++)
            {
                double gi = g[i] + wd * p[i];
                double d = gi;
                if (momentum != 0)
                {
                    _buf[i] = _first ? gi : momentum * _buf[i] + (1 - dampening) * gi;
                    d = nesterov ? gi + momentum * _buf[i] : _buf[i];
                }
                p[i] -= lr * d;
            }
            _first = false;
        }
    }

    public static TheoryData<string, float, float, float, bool> Cases()
    {
        var data = new TheoryData<string, float, float, float, bool>();
        foreach (var device in new[] { "reference", "cpu" })
        {
            data.Add(device, 0f, 0f, 0f, false);       // plain
            data.Add(device, 0f, 0f, 0.1f, false);     // weight decay only
            data.Add(device, 0.9f, 0f, 0f, false);     // momentum
            data.Add(device, 0.9f, 0.3f, 0f, false);   // damped momentum
            data.Add(device, 0.9f, 0f, 0f, true);      // nesterov
            data.Add(device, 0.8f, 0f, 0.05f, true);   // nesterov + weight decay
            data.Add(device, 0.5f, 0.5f, 0.02f, false); // everything but nesterov
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Several_Steps_Match_The_Reference(string deviceName, float momentum, float dampening, float wd, bool nesterov)
    {
        var device = Device.Parse(deviceName);
        const int n = 6;
        const float lr = 0.1f;
        var init = Values(n, 40);
        using var p = NewParameter(init, device, 2, 3);
        using var opt = new Sgd([p], lr, momentum, dampening, wd, nesterov);
        var reference = new ReferenceSgd(lr, momentum, dampening, wd, nesterov, n);
        var expected = init.Select(v => (double)v).ToArray();
        for (int step = 1; step <= 4; step++)
        {
            var g = Values(n, 50 + step);
            SetGrad(p, g);
            opt.Step();
            reference.Step(expected, g);
            TestDevices.AssertClose(expected, p.ToArray(), atol: 1e-6, rtol: 1e-5, what: $"step {step}");
        }
        Assert.Equal(4, opt.StepCount);
    }

    [Fact]
    public void Momentum_Buffer_Starts_On_A_Parameters_First_Update()
    {
        // b gets no gradient at step 1; at step 2 its buffer must start from g' (first step), not decay a zero buffer.
        var device = Device.Reference;
        using var a = NewParameter([1f, 2f], device, 2);
        using var b = NewParameter([3f, 4f], device, 2);
        using var opt = new Sgd([a, b], lr: 0.5f, momentum: 0.9f, dampening: 0.5f);
        SetGrad(a, [1f, 1f]);
        opt.Step();
        Assert.Equal([3f, 4f], b.ToArray());
        SetGrad(b, [2f, -2f]);
        opt.Step();
        Assert.Equal([3f - 0.5f * 2f, 4f + 0.5f * 2f], b.ToArray());
    }

    [Fact]
    public void Nesterov_Needs_Momentum_And_No_Dampening()
    {
        using var p = NewParameter([1f], Device.Reference, 1);
        Assert.Throws<ArgumentException>(() => new Sgd([p], 0.1f, momentum: 0f, nesterov: true));
        Assert.Throws<ArgumentException>(() => new Sgd([p], 0.1f, momentum: 0.9f, dampening: 0.1f, nesterov: true));
    }
}
