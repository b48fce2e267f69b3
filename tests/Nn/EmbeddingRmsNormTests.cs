using NativeReasoner.Nn;
using Xunit;

namespace NativeReasoner.Tests.Nn;

public sealed class EmbeddingRmsNormTests
{
    [Fact]
    public void Embedding_Init_Is_Standard_Normal_From_The_Generator()
    {
        using var emb = new Embedding(50, 40, new Generator(3));
        Assert.Equal([50, 40], emb.Weight.Shape.ToArray());
        Assert.Equal(["weight"], emb.NamedParameters().Select(n => n.Name));
        var expected = new float[2000];
        new Generator(3).FillNormal(expected, 0f, 1f);
        Assert.Equal(expected, emb.Weight.ToArray());
        double mean = expected.Average(v => (double)v);
        double var = expected.Average(v => (v - mean) * (v - mean));
        Assert.InRange(mean, -0.1, 0.1);
        Assert.InRange(var, 0.9, 1.1);
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void Embedding_Forward_Picks_Rows_And_Backward_Sums_Them(string deviceName)
    {
        var device = Device.Parse(deviceName);
        using var emb = new Embedding(4, 3, new Generator(5), device);
        var w = emb.Weight.ToArray();
        using (new TensorScope())
        {
            var ids = Tensor.FromArray([2L, 0L, 2L], [3], device);
            var y = emb.Forward(ids);
            Assert.Equal([3, 3], y.Shape.ToArray());
            Assert.Equal(w[6..9].Concat(w[0..3]).Concat(w[6..9]), y.ToArray());
            y.Sum().Backward();
        }
        Assert.Equal([1f, 1f, 1f, 0f, 0f, 0f, 2f, 2f, 2f, 0f, 0f, 0f], emb.Weight.Grad!.ToArray());
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void RmsNorm_Weight_Is_Ones_And_Forward_Normalises(string deviceName)
    {
        var device = Device.Parse(deviceName);
        using var norm = new RmsNorm(4, 1e-5f, device);
        Assert.Equal([1f, 1f, 1f, 1f], norm.Weight.ToArray());
        Assert.Equal(["weight"], norm.NamedParameters().Select(n => n.Name));
        using var scope = new TensorScope();
        using (Tensor.NoGrad()) norm.Weight.CopyFrom_(Tensor.FromArray([1f, 2f, 0.5f, -1f], [4], device));
        float[] xs = [1f, 2f, 3f, 4f, -1f, 0f, 0.5f, 2f];
        var y = norm.Forward(Tensor.FromArray(xs, [2, 4], device));
        var expected = new double[8];
        double[] wv = [1, 2, 0.5, -1];
        for (int r = 0; r < 2; r++)
        {
            double ms = 0;
            for (int c = 0; c < 4; c++) ms += (double)xs[r * 4 + c] * xs[r * 4 + c];
            double rstd = 1 / Math.Sqrt(ms / 4 + 1e-5f);
            for (int c = 0; c < 4; c++) expected[r * 4 + c] = xs[r * 4 + c] * rstd * wv[c];
        }
        TestDevices.AssertClose(expected, y.ToArray(), what: "y");
    }
}
