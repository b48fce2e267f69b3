using Xunit;
using F = NativeReasoner.Functional;

namespace NativeReasoner.Tests.Ops;

/// <summary>Functional.SiluMul and Functional.LogSoftmaxGather: values and gradients on both backends.</summary>
public class FusedOpTests
{
    public static TheoryData<string> Devices => new() { "cpu", "reference" };

    private static void Close(double[] expected, Tensor actual, double tol = 1e-5)
    {
        var a = actual.ToArray();
        Assert.Equal(expected.Length, a.Length);
        for (int i = 0; i < a.Length; i++)
            Assert.True(Math.Abs(expected[i] - a[i]) <= tol * (1 + Math.Abs(expected[i])),
                $"element {i}: expected {expected[i]}, got {a[i]}");
    }

    private static double Sig(double x) => 1 / (1 + Math.Exp(-x));

    [Theory, MemberData(nameof(Devices))]
    public void SiluMul_ValuesAndGrads(string device)
    {
        var d = Device.Parse(device);
        using var scope = new TensorScope();
        float[] g = [-1.5f, 0f, 0.5f, 3f], u = [2f, -1f, 0.25f, -0.5f], w = [1f, 2f, -1f, 0.5f];
        var gate = Tensor.FromArray(g, [2, 2], d).RequiresGrad_();
        var up = Tensor.FromArray(u, [2, 2], d).RequiresGrad_();
        var y = F.SiluMul(gate, up);
        Assert.Equal([2, 2], y.Shape.ToArray());
        Close(g.Select((x, i) => x * Sig(x) * u[i]).ToArray(), y);
        y.Backward(Tensor.FromArray(w, [2, 2], d));
        Close(g.Select((x, i) => w[i] * u[i] * Sig(x) * (1 + x * (1 - Sig(x)))).ToArray(), gate.Grad!);
        Close(g.Select((x, i) => w[i] * x * Sig(x)).ToArray(), up.Grad!);
    }

    [Fact]
    public void SiluMul_ShapeMismatchThrows()
    {
        using var scope = new TensorScope();
        var ex = Assert.Throws<ArgumentException>(() => F.SiluMul(Tensor.Zeros([2, 3]), Tensor.Zeros([3, 2])));
        Assert.Contains("silu_mul", ex.Message);
    }

    [Theory, MemberData(nameof(Devices))]
    public void LogSoftmaxGather_ValuesAndGrads(string device)
    {
        var d = Device.Parse(device);
        using var scope = new TensorScope();
        float[] x = [1f, 2f, 3f, -1f, 0.5f, 4f];
        const float T = 2f;
        var logits = Tensor.FromArray(x, [1, 2, 3], d).RequiresGrad_();
        var ids = Tensor.FromArray(new long[] { 1, 2 }, [1, 2], d);
        var logp = F.LogSoftmaxGather(logits, ids, T);
        Assert.Equal([1, 2], logp.Shape.ToArray());
        var expected = new double[2];
        var grad = new double[6];
        double[] w = [1.0, -0.5];
        for (int r = 0; r < 2; r++)
        {
            double lse = Math.Log(Enumerable.Range(0, 3).Sum(c => Math.Exp(x[r * 3 + c] / T)));
            int id = r == 0 ? 1 : 2;
            expected[r] = x[r * 3 + id] / T - lse;
            for (int c = 0; c < 3; c++)
                grad[r * 3 + c] = w[r] / T * ((c == id ? 1 : 0) - Math.Exp(x[r * 3 + c] / T - lse));
        }
        Close(expected, logp);
        logp.Backward(Tensor.FromArray(w.Select(v => (float)v).ToArray(), [1, 2], d));
        Close(grad, logits.Grad!);
    }

    [Fact]
    public void LogSoftmaxGather_RejectsBadIdsAndTemperature()
    {
        using var scope = new TensorScope();
        var logits = Tensor.Zeros([2, 3]);
        Assert.Throws<ArgumentOutOfRangeException>(() => F.LogSoftmaxGather(logits, Tensor.FromArray(new long[] { 0, 3 }, [2])));
        Assert.Throws<ArgumentOutOfRangeException>(() => F.LogSoftmaxGather(logits, Tensor.FromArray(new long[] { 0, 1 }, [2]), 0f));
        Assert.Throws<ArgumentException>(() => F.LogSoftmaxGather(logits, Tensor.FromArray(new long[] { 0, 1, 2 }, [3])));
    }
}
