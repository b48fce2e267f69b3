using NativeReasoner.Nn;
using Xunit;

namespace NativeReasoner.Tests.Nn;

public sealed class LinearTests
{
    [Fact]
    public void Shapes_Names_And_PyTorch_Init_Bounds()
    {
        using var lin = new Linear(16, 3, bias: true, new Generator(7));
        Assert.Equal([3, 16], lin.Weight.Shape.ToArray());
        Assert.Equal([3], lin.Bias!.Shape.ToArray());
        Assert.Equal(["weight", "bias"], lin.NamedParameters().Select(n => n.Name));
        float bound = 1f / MathF.Sqrt(16);
        Assert.All(lin.Weight.ToArray(), v => Assert.InRange(v, -bound, bound));
        Assert.All(lin.Bias.ToArray(), v => Assert.InRange(v, -bound, bound));
        // Uniform over the whole range, not a constant.
        Assert.True(lin.Weight.ToArray().Max() - lin.Weight.ToArray().Min() > bound);
    }

    [Fact]
    public void Same_Seed_Same_Weights_Weight_Drawn_Before_Bias()
    {
        using var a = new Linear(5, 4, bias: true, new Generator(11));
        using var b = new Linear(5, 4, bias: false, new Generator(11));
        Assert.Equal(a.Weight.ToArray(), b.Weight.ToArray());
        Assert.Null(b.Bias);
        Assert.Equal(["weight"], b.NamedParameters().Select(n => n.Name));
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void Forward_Is_X_Times_W_Transposed_Plus_B(string deviceName)
    {
        var device = Device.Parse(deviceName);
        using var lin = new Linear(3, 2, bias: true, new Generator(3), device);
        using var scope = new TensorScope();
        var x = Tensor.FromArray([1f, 2f, 3f, -1f, 0.5f, 4f], [2, 3], device);
        var y = lin.Forward(x);
        Assert.Equal([2, 2], y.Shape.ToArray());
        var w = lin.Weight.ToArray();
        var b = lin.Bias!.ToArray();
        var xs = x.ToArray();
        var expected = new float[4];
        for (int r = 0; r < 2; r++)
            for (int o = 0; o < 2; o++)
            {
                double s = b[o];
                for (int i = 0; i < 3; i++) s += (double)xs[r * 3 + i] * w[o * 3 + i];
                expected[r * 2 + o] = (float)s;
            }
        TestDevices.AssertClose(expected, y.ToArray(), what: "y");
    }
}
