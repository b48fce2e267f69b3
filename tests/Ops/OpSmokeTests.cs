using NativeReasoner.Kernels;
using Xunit;
using F = NativeReasoner.Functional;

namespace NativeReasoner.Tests.Ops;

/// <summary>
/// Small hand-computed checks of the composite ops (values and gradients) on both backends. The
/// exhaustive reference-vs-CPU, gradcheck and PyTorch-fixture tests live elsewhere.
/// </summary>
public class OpSmokeTests
{
    public static TheoryData<string> Devices => new() { "cpu", "reference" };

    private const float Tol = 1e-5f;

    private static Tensor T(Device d, float[] data, params int[] shape) => Tensor.FromArray(data, shape, d);

    private static Tensor Ids(Device d, long[] data, params int[] shape) => Tensor.FromArray(data, shape, d);

    private static void Close(float[] expected, Tensor actual, float tol = Tol)
    {
        var a = actual.ToArray();
        Assert.Equal(expected.Length, a.Length);
        for (int i = 0; i < a.Length; i++)
            Assert.True(Math.Abs(expected[i] - a[i]) <= tol * (1 + Math.Abs(expected[i])),
                $"element {i}: expected {expected[i]}, got {a[i]} (all: [{string.Join(", ", a)}])");
    }

    // ------------------------------------------------------------------ softmax

    [Theory, MemberData(nameof(Devices))]
    public void Softmax_LastAxis_ValuesAndGrad(string device)
    {
        var d = Device.Parse(device);
        using var scope = new TensorScope();
        var x = T(d, [0f, MathF.Log(2), MathF.Log(3)], 1, 3).RequiresGrad_();
        var y = x.Softmax(-1);
        Close([1 / 6f, 2 / 6f, 3 / 6f], y);
        // d/dx of y·w with w = e0: y ⊙ (w − y0)
        y.Backward(T(d, [1f, 0f, 0f], 1, 3));
        Close([1 / 6f * 5 / 6f, -2 / 36f, -3 / 36f], x.Grad!);
    }

    [Theory, MemberData(nameof(Devices))]
    public void Softmax_FirstAxis_ValuesAndGrad(string device)
    {
        var d = Device.Parse(device);
        using var scope = new TensorScope();
        // x: [3, 2]; column 0 = [0, ln 2, ln 3], column 1 = 0
        var x = T(d, [0f, 0f, MathF.Log(2), 0f, MathF.Log(3), 0f], 3, 2).RequiresGrad_();
        var y = x.Softmax(0);
        Assert.Equal([3, 2], y.Shape.ToArray());
        Close([1 / 6f, 1 / 3f, 2 / 6f, 1 / 3f, 3 / 6f, 1 / 3f], y);
        y.Backward(T(d, [1f, 0f, 0f, 0f, 0f, 0f], 3, 2));
        Close([1 / 6f * 5 / 6f, 0f, -2 / 36f, 0f, -3 / 36f, 0f], x.Grad!);
    }

    [Theory, MemberData(nameof(Devices))]
    public void LogSoftmax_MiddleAxis_ValuesAndGrad(string device)
    {
        var d = Device.Parse(device);
        using var scope = new TensorScope();
        // x: [1, 3, 1] along axis 1
        var x = T(d, [0f, MathF.Log(2), MathF.Log(3)], 1, 3, 1).RequiresGrad_();
        var y = x.LogSoftmax(1);
        Close([MathF.Log(1 / 6f), MathF.Log(2 / 6f), MathF.Log(3 / 6f)], y);
        // dx = g − softmax · Σ g with g = 1: 1 − 3·p
        y.Backward(T(d, [1f, 1f, 1f], 1, 3, 1));
        Close([1 - 3 / 6f, 1 - 6 / 6f, 1 - 9 / 6f], x.Grad!);
    }

    // ------------------------------------------------------------------ rms norm, rope

    [Theory, MemberData(nameof(Devices))]
    public void RmsNorm_ValuesAndGrads(string device)
    {
        var d = Device.Parse(device);
        using var scope = new TensorScope();
        var x = T(d, [3f, 4f], 1, 2).RequiresGrad_();
        var w = T(d, [1f, 2f], 2).RequiresGrad_();
        var y = F.RmsNorm(x, w, 0f);
        float r = 1 / MathF.Sqrt(12.5f);
        Close([3 * r, 8 * r], y);
        y.Backward(T(d, [1f, 0f], 1, 2));
        // dx_j = r·w_j·g_j − x_j·r³/C·Σ g·w·x, Σ = 3
        Close([r - 4.5f * r * r * r, -6f * r * r * r], x.Grad!);
        Close([3 * r, 0f], w.Grad!);
    }

    [Fact]
    public void RopeTables_Values()
    {
        using var scope = new TensorScope();
        var (cos, sin) = F.RopeTables(3, 4, theta: 100f, startPosition: 2);
        Assert.Equal([3, 2], cos.Shape.ToArray());
        // inv_freq = [1, 0.1]; positions 2, 3, 4
        Close([MathF.Cos(2), MathF.Cos(0.2f), MathF.Cos(3), MathF.Cos(0.3f), MathF.Cos(4), MathF.Cos(0.4f)], cos);
        Close([MathF.Sin(2), MathF.Sin(0.2f), MathF.Sin(3), MathF.Sin(0.3f), MathF.Sin(4), MathF.Sin(0.4f)], sin);
    }

    [Theory, MemberData(nameof(Devices))]
    public void Rope_RotatesPairsAndBackwardUnrotates(string device)
    {
        var d = Device.Parse(device);
        using var scope = new TensorScope();
        var (cos0, sin0) = F.RopeTables(2, 2);
        var cos = cos0.To(d);
        var sin = sin0.To(d);
        // [B=1, T=2, H=1, D=2] with seqDim 1, and the same data as [B=1, H=1, T=2, D=2] with seqDim 2.
        foreach (var (shape, seqDim) in new[] { (new[] { 1, 2, 1, 2 }, 1), (new[] { 1, 1, 2, 2 }, 2) })
        {
            var x = T(d, [1f, 0f, 1f, 0f], shape).RequiresGrad_();
            var y = F.Rope(x, cos, sin, seqDim);
            Close([1f, 0f, MathF.Cos(1), MathF.Sin(1)], y);
            // The backward applies the inverse rotation: feeding y back gives x.
            y.Backward(y.Detach());
            Close([1f, 0f, 1f, 0f], x.Grad!);
        }
    }

    // ------------------------------------------------------------------ cross entropy

    [Theory, MemberData(nameof(Devices))]
    public void CrossEntropy_MeanOverCountedRows_AndGrad(string device)
    {
        var d = Device.Parse(device);
        using var scope = new TensorScope();
        var logits = T(d, [0f, 0f, 0f, MathF.Log(3), 5f, -5f], 3, 2).RequiresGrad_();
        var targets = Ids(d, [1, 1, -100], 3);
        var loss = F.CrossEntropy(logits, targets);
        Assert.Equal(0, loss.Rank);
        Close([(MathF.Log(2) + MathF.Log(4 / 3f)) / 2], loss);
        loss.Backward();
        Close([0.25f, -0.25f, 0.125f, -0.125f, 0f, 0f], logits.Grad!);
    }

    [Theory, MemberData(nameof(Devices))]
    public void CrossEntropy_AllIgnoredIsNaN_BadTargetThrows(string device)
    {
        var d = Device.Parse(device);
        using var scope = new TensorScope();
        var logits = T(d, [0f, 1f, 2f, 3f], 2, 2);
        Assert.True(float.IsNaN(F.CrossEntropy(logits, Ids(d, [-100, -100], 2)).Item()));
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => F.CrossEntropy(logits, Ids(d, [0, 7], 2)));
        Assert.Contains("row 1", ex.Message);
        Assert.Contains("7", ex.Message);
        Assert.Contains("V = 2", ex.Message);
        // int32 targets are accepted.
        Assert.False(float.IsNaN(F.CrossEntropy(logits, Tensor.FromArray(new[] { 0, 1 }, [2], d)).Item()));
    }

    // ------------------------------------------------------------------ attention

    [Theory, MemberData(nameof(Devices))]
    public void Attention_CausalBottomRight_ValuesAndGrad(string device)
    {
        var d = Device.Parse(device);
        using var scope = new TensorScope();
        // [B=1, H=1, T=2, D=1] queries and keys all zero: uniform weights over the visible keys.
        var q = T(d, [0f, 0f], 1, 1, 2, 1).RequiresGrad_();
        var k = T(d, [0f, 0f], 1, 1, 2, 1).RequiresGrad_();
        var v = T(d, [1f, 2f, 3f, 4f], 1, 1, 2, 2).RequiresGrad_();
        var o = F.ScaledDotProductAttention(q, k, v, causal: true);
        Assert.Equal([1, 1, 2, 2], o.Shape.ToArray());
        Close([1f, 2f, 2f, 3f], o);
        o.Backward(T(d, [1f, 1f, 1f, 1f], 1, 1, 2, 2));
        // Key 0 gets weight 1 + 1/2, key 1 gets 1/2.
        Close([1.5f, 1.5f, 0.5f, 0.5f], v.Grad!);
        Close([0f, 0f], q.Grad!);

        // One query (a decode step) sees every key, causal or not.
        var q1 = T(d, [0f], 1, 1, 1, 1);
        Close([2f, 3f], F.ScaledDotProductAttention(q1, k, v, causal: true));
    }

    // ------------------------------------------------------------------ embedding and indexing

    [Theory, MemberData(nameof(Devices))]
    public void Embedding_RowsAndGrad(string device)
    {
        var d = Device.Parse(device);
        using var scope = new TensorScope();
        var w = T(d, [0f, 1f, 2f, 3f, 4f, 5f], 3, 2).RequiresGrad_();
        var y = F.Embedding(Ids(d, [2, 0, 2, 1], 2, 2), w);
        Assert.Equal([2, 2, 2], y.Shape.ToArray());
        Close([4f, 5f, 0f, 1f, 4f, 5f, 2f, 3f], y);
        y.Backward(Tensor.Full([2, 2, 2], 1f, d));
        Close([1f, 1f, 1f, 1f, 2f, 2f], w.Grad!);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => F.Embedding(Ids(d, [0, 1, 2, 3], 2, 2), w));
        Assert.Contains("(1, 1)", ex.Message);
        Assert.Contains("id 3", ex.Message);
        Assert.Contains("V = 3", ex.Message);
    }

    [Theory, MemberData(nameof(Devices))]
    public void Gather_ValuesGradAndErrors(string device)
    {
        var d = Device.Parse(device);
        using var scope = new TensorScope();
        var x = T(d, [1f, 2f, 3f, 4f], 2, 2).RequiresGrad_();
        var y = x.Gather(1, Ids(d, [0, 0, 1, 0], 2, 2));
        Close([1f, 1f, 4f, 3f], y);
        y.Backward(Tensor.Full([2, 2], 1f, d));
        Close([2f, 0f, 1f, 1f], x.Grad!);
        Assert.Throws<ArgumentException>(() => x.Gather(1, Ids(d, [0, 0, 0], 3, 1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => x.Gather(0, Ids(d, [0, 2], 1, 2)));
    }

    [Theory, MemberData(nameof(Devices))]
    public void IndexSelect_ValuesAndGrad(string device)
    {
        var d = Device.Parse(device);
        using var scope = new TensorScope();
        var x = T(d, [1f, 2f, 3f, 4f, 5f, 6f], 3, 2).RequiresGrad_();
        var y = x.IndexSelect(0, Ids(d, [2, 0, 2], 3));
        Close([5f, 6f, 1f, 2f, 5f, 6f], y);
        y.Backward(Tensor.Full([3, 2], 1f, d));
        Close([1f, 1f, 0f, 0f, 2f, 2f], x.Grad!);
        Close([2f, 4f, 6f], x.IndexSelect(-1, Ids(d, [1], 1)));
    }

    [Theory, MemberData(nameof(Devices))]
    public void ScatterAdd_ValuesAndGrads(string device)
    {
        var d = Device.Parse(device);
        using var scope = new TensorScope();
        var x = T(d, [1f, 1f, 1f, 1f, 1f, 1f], 2, 3).RequiresGrad_();
        var src = T(d, [1f, 2f, 3f, 4f], 2, 2).RequiresGrad_();
        var y = x.ScatterAdd(1, Ids(d, [0, 0, 2, 1], 2, 2), src);
        Close([4f, 1f, 1f, 1f, 5f, 4f], y);
        Close([1f, 1f, 1f, 1f, 1f, 1f], x); // out of place
        y.Backward(T(d, [1f, 2f, 3f, 4f, 5f, 6f], 2, 3));
        Close([1f, 2f, 3f, 4f, 5f, 6f], x.Grad!);
        Close([1f, 1f, 6f, 5f], src.Grad!);
    }

    // ------------------------------------------------------------------ cat, stack, split, chunk

    [Theory, MemberData(nameof(Devices))]
    public void Cat_ValuesAndGrads(string device)
    {
        var d = Device.Parse(device);
        using var scope = new TensorScope();
        var a = T(d, [1f, 2f], 2, 1).RequiresGrad_();
        var b0 = T(d, [3f, 5f, 4f, 6f], 2, 2).RequiresGrad_();
        var b = b0.T(); // non-contiguous [[3, 4], [5, 6]]
        var y = Tensor.Cat([a, b], 1);
        Close([1f, 3f, 4f, 2f, 5f, 6f], y);
        y.Backward(T(d, [10f, 20f, 30f, 40f, 50f, 60f], 2, 3));
        Close([10f, 40f], a.Grad!);
        Close([20f, 50f, 30f, 60f], b0.Grad!);
        Assert.Throws<ArgumentException>(() => Tensor.Cat([a, T(d, [1f, 2f, 3f], 3, 1)], 1));
    }

    [Theory, MemberData(nameof(Devices))]
    public void Stack_ValuesAndGrads(string device)
    {
        var d = Device.Parse(device);
        using var scope = new TensorScope();
        var a = T(d, [1f, 2f], 2).RequiresGrad_();
        var b = T(d, [3f, 4f], 2).RequiresGrad_();
        Close([1f, 2f, 3f, 4f], Tensor.Stack([a, b], 0));
        var y = Tensor.Stack([a, b], -1);
        Assert.Equal([2, 2], y.Shape.ToArray());
        Close([1f, 3f, 2f, 4f], y);
        y.Backward(T(d, [1f, 2f, 3f, 4f], 2, 2));
        Close([1f, 3f], a.Grad!);
        Close([2f, 4f], b.Grad!);
    }

    [Theory, MemberData(nameof(Devices))]
    public void SplitAndChunk_PartsAndGrad(string device)
    {
        var d = Device.Parse(device);
        using var scope = new TensorScope();
        var x = T(d, [0f, 1f, 2f, 3f, 4f], 5).RequiresGrad_();
        var parts = x.Split([2, 3], 0);
        Close([0f, 1f], parts[0]);
        Close([2f, 3f, 4f], parts[1]);
        Assert.Equal([3, 2], x.Chunk(2, 0).Select(p => p.Shape[0]).ToArray());
        Assert.Equal([2, 2, 1], x.Chunk(3, 0).Select(p => p.Shape[0]).ToArray());
        Assert.Throws<ArgumentException>(() => x.Split([2, 2], 0));
        Assert.Equal(3, Tensor.Zeros([0], DType.Float32, d).Chunk(3, 0).Length); // as torch.chunk
        var y = parts[1].Mul(2f).Sum();
        y.Backward();
        Close([0f, 0f, 2f, 2f, 2f], x.Grad!);
    }

    // ------------------------------------------------------------------ topk

    [Theory, MemberData(nameof(Devices))]
    public void TopK_ValuesIndicesAndGrad(string device)
    {
        var d = Device.Parse(device);
        using var scope = new TensorScope();
        var x = T(d, [1f, 3f, 2f, 3f, 9f, 8f, 7f, 6f], 2, 4).RequiresGrad_();
        var (values, indices) = x.TopK(2);
        Close([3f, 3f, 9f, 8f], values);
        Assert.Equal([1L, 3L, 0L, 1L], indices.ToInt64Array());
        values.Backward(T(d, [1f, 2f, 3f, 4f], 2, 2));
        Close([0f, 1f, 0f, 2f, 3f, 4f, 0f, 0f], x.Grad!);
        Assert.Throws<ArgumentOutOfRangeException>(() => x.TopK(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => x.TopK(5));
    }

    // ------------------------------------------------------------------ core

    // Composite ops dispose recorded intermediates with `using`: the graph must survive that.
    [Fact]
    public void DisposedRecordedIntermediate_KeepsGraph()
    {
        using var scope = new TensorScope();
        var x = Tensor.FromArray(new float[] { 1, 2, 3, 4, 5, 6 }, 6).RequiresGrad_();
        Tensor y;
        using (var a = x.Reshape(2, 3)) y = a.Reshape(3, 2);
        y.Backward(Tensor.Full([3, 2], 1f));
        Assert.NotNull(x.Grad);
    }

    [Theory, MemberData(nameof(Devices))]
    public void CallerMayDisposeIntermediatesAndIndicesBeforeBackward(string device)
    {
        var d = Device.Parse(device);
        using var scope = new TensorScope();
        var x = T(d, [1f, 2f, 3f, 4f, 5f, 6f], 2, 3).RequiresGrad_();
        var w = T(d, [1f, 2f, 3f, 4f], 2, 2).RequiresGrad_();
        var (top, indices) = x.TopK(1);
        indices.Dispose();
        var ids = Ids(d, [1, 1], 2);
        Tensor loss;
        using (var p = x.Softmax(0))
        using (var e = F.Embedding(ids, w))   // [2, 2]
        using (var pe = p.Narrow(1, 0, 2))    // [2, 2]
        using (var prod = pe.Mul(e))
        using (var s1 = prod.Sum())
        using (var s2 = top.Sum())
            loss = s1.Add(s2);
        ids.Dispose();
        loss.Backward();
        // top routes 1 to the last column of each row. The softmax over axis 0 meets an upstream
        // gradient that is constant down each column (e has equal rows), so its gradient is 0.
        Close([0f, 0f, 1f, 0f, 0f, 1f], x.Grad!);
        // Row 1 of w was used twice; each column of p sums to 1 over axis 0.
        Close([0f, 0f, 1f, 1f], w.Grad!);
    }
}
