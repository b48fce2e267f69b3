using NativeReasoner.Nn;
using NativeReasoner.Optim;
using NativeReasoner.Tests.Nn;
using Xunit;
using static NativeReasoner.Tests.Optim.OptimTestHelpers;

namespace NativeReasoner.Tests.Optim;

/// <summary>
/// A training step runs inside a <see cref="TensorScope"/> that frees its activations; parameters, their
/// gradients and the optimizer state must all survive it.
/// </summary>
public sealed class TrainingStepScopeTests
{
    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void Parameters_Grads_And_AdamW_State_Survive_The_Step_Scope(string deviceName)
    {
        var device = Device.Parse(deviceName);
        using var model = new Linear(3, 2, bias: true, new Generator(9), device);
        using var opt = new AdamW(model.Parameters(), lr: 0.05f);
        float[] xs = [1f, -2f, 0.5f, 3f, 1f, -1f];

        for (int step = 0; step < 3; step++)
        {
            var before = model.Weight.ToArray();
            var w = before.Select(v => (double)v).ToArray();
            var b = model.Bias!.ToArray();
            TensorScope scope;
            using (scope = new TensorScope())
            {
                var x = Tensor.FromArray(xs, [2, 3], device);
                var y = model.Forward(x);
                var loss = (y * y).Mean();
                loss.Backward();
                opt.Step();
                Assert.True(scope.Count > 0);
            }
            Assert.Equal(0, scope.Count);
            Assert.All(model.Parameters(), p => Assert.False(p.IsDisposed));
            Assert.NotNull(model.Weight.Grad);
            Assert.False(model.Weight.Grad!.IsDisposed);

            // The gradient left behind is that of mean(y²): dW[o,i] = Σ_r 2·y[r,o]·x[r,i] / 4.
            var dW = new double[6];
            for (int r = 0; r < 2; r++)
                for (int o = 0; o < 2; o++)
                {
                    double yro = b[o];
                    for (int i = 0; i < 3; i++) yro += w[o * 3 + i] * xs[r * 3 + i];
                    for (int i = 0; i < 3; i++) dW[o * 3 + i] += 2 * yro * xs[r * 3 + i] / 4;
                }
            TestDevices.AssertClose(dW, model.Weight.Grad.ToArray(), atol: 1e-5, what: $"dW step {step}");
            Assert.NotEqual(before, model.Weight.ToArray());
            opt.ZeroGrad();
        }
        Assert.Equal(3, opt.StepCount);
        Assert.Equal(3, opt.ParameterStep(model.Weight));
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void Sgd_Momentum_Buffer_Survives_The_Step_Scope(string deviceName)
    {
        // loss = Σ p² ⇒ g = 2p; the momentum trajectory is only right if the buffer from step 1 is intact.
        var device = Device.Parse(deviceName);
        float[] init = [1f, -2f, 3f];
        using var p = NewParameter(init, device, 3);
        using var opt = new Sgd([p], lr: 0.1f, momentum: 0.9f);
        var expected = init.Select(v => (double)v).ToArray();
        var buf = new double[3];
        for (int step = 0; step < 4; step++)
        {
            using (new TensorScope())
            {
                var loss = (p * p).Sum();
                loss.Backward();
                opt.Step();
            }
            opt.ZeroGrad();
            for (int i = 0; i < 3; i++)
            {
                double g = 2 * expected[i];
                buf[i] = step == 0 ? g : 0.9 * buf[i] + g;
                expected[i] -= 0.1 * buf[i];
            }
            TestDevices.AssertClose(expected, p.ToArray(), atol: 1e-6, what: $"step {step}");
        }
    }
}
