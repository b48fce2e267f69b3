using NativeReasoner.Nn;
using NativeReasoner.Optim;
using NativeReasoner.Tests.Nn;
using Xunit;
using static NativeReasoner.Tests.Optim.OptimTestHelpers;

namespace NativeReasoner.Tests.Optim;

public sealed class GradClipTests
{
    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void Clips_To_MaxNorm_And_Returns_The_Norm_Before(string deviceName)
    {
        var device = Device.Parse(deviceName);
        using var a = NewParameter(new float[3], device, 3);
        using var b = NewParameter(new float[4], device, 2, 2);
        using var frozen = NewParameter(new float[2], device, 2); // no grad: ignored
        SetGrad(a, [3f, 0f, 0f]);
        SetGrad(b, [0f, 4f, 0f, 12f]);
        float norm = GradClip.ClipGradNorm([a, b, frozen], maxNorm: 6.5f);
        Assert.Equal(13f, norm, 5);
        double scale = 6.5 / (13 + 1e-6);
        TestDevices.AssertClose(new[] { 3 * scale, 0, 0 }, a.Grad!.ToArray(), atol: 1e-6, what: "a");
        TestDevices.AssertClose(new[] { 0, 4 * scale, 0, 12 * scale }, b.Grad!.ToArray(), atol: 1e-6, what: "b");
        Assert.Null(frozen.Grad);
    }

    [Fact]
    public void Below_MaxNorm_Nothing_Changes()
    {
        using var a = NewParameter(new float[2], Device.Reference, 2);
        SetGrad(a, [0.3f, 0.4f]);
        Assert.Equal(0.5f, GradClip.ClipGradNorm([a], 1f), 6);
        Assert.Equal([0.3f, 0.4f], a.Grad!.ToArray());
    }

    [Fact]
    public void Non_Finite_Norm_Is_Returned_And_Nothing_Is_Scaled()
    {
        using var a = NewParameter(new float[2], Device.Reference, 2);
        using var b = NewParameter(new float[1], Device.Reference, 1);
        SetGrad(a, [float.NaN, 1f]);
        SetGrad(b, [5f]);
        Assert.True(float.IsNaN(GradClip.ClipGradNorm([a, b], 1f)));
        Assert.Equal([5f], b.Grad!.ToArray());
        SetGrad(a, [float.PositiveInfinity, 1f]);
        Assert.True(float.IsPositiveInfinity(GradClip.ClipGradNorm([a, b], 1f)));
        Assert.Equal([5f], b.Grad!.ToArray());
    }

    [Fact]
    public void No_Gradients_Gives_Zero()
    {
        using var a = NewParameter(new float[2], Device.Reference, 2);
        Assert.Equal(0f, GradClip.ClipGradNorm([a], 1f));
        Assert.Equal(0f, GradClip.ClipGradNorm(Array.Empty<Parameter>(), 1f));
    }
}
