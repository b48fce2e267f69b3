using NativeReasoner.Autograd;
using NativeReasoner.Kernels;
using NativeReasoner.Kernels.Memory;
using Xunit;

namespace NativeReasoner.Tests.Verification;

/// <summary>The contract of the autograd engine and tensor lifetimes, independent of any one op's numerics.</summary>
public class AutogradSemanticsTests
{
    public static IEnumerable<object[]> Devices => [[DeviceType.Reference], [DeviceType.Cpu]];

    private static Device On(DeviceType t) => t == DeviceType.Cpu ? Device.Cpu : Device.Reference;

    private static Tensor Leaf(Device d, params float[] values) => Tensor.FromArray(values.AsSpan(), [values.Length], d).RequiresGrad_();

    // y = Σ x² has gradient 2x: an easy closed form for checking accumulation.
    private static void BackwardSumOfSquares(Tensor x)
    {
        using var scope = new TensorScope();
        var y = (x * x).Sum();
        y.Backward();
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void GradientsAccumulateAcrossBackwardCalls(DeviceType dt)
    {
        using var scope = new TensorScope();
        var x = Leaf(On(dt), 1f, -2f, 3f);
        BackwardSumOfSquares(x);
        Assert.Equal(new[] { 2f, -4f, 6f }, x.Grad!.ToArray());
        BackwardSumOfSquares(x);
        Assert.Equal(new[] { 4f, -8f, 12f }, x.Grad!.ToArray());
    }

    // A leaf's first gradient may take over the memory of the engine's temporary instead of copying it; these
    // pin down that no leaf gradient then shares memory with another leaf's gradient, with the caller's seed
    // gradient, or with a tensor the graph still holds for a second pass.
    [Theory]
    [MemberData(nameof(Devices))]
    public void LeafGradientsNeverShareMemory(DeviceType dt)
    {
        using var scope = new TensorScope();
        var d = On(dt);
        var a = Leaf(d, 1f, 2f, 3f);
        var b = Leaf(d, 4f, 5f, 6f);
        // Add's backward hands the same upstream gradient to both inputs.
        using (new TensorScope())
            (a + b).Sum().Backward();
        a.Grad!.MulInPlace_(10f);
        Assert.Equal(new[] { 10f, 10f, 10f }, a.Grad!.ToArray());
        Assert.Equal(new[] { 1f, 1f, 1f }, b.Grad!.ToArray());
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void LeafGradientDoesNotAliasTheCallersGradient(DeviceType dt)
    {
        using var scope = new TensorScope();
        var d = On(dt);
        var x = Leaf(d, 1f, 2f);
        var seed = Tensor.FromArray(new[] { 3f, 4f }.AsSpan(), [2], d);
        x.Backward(seed);  // the root is the leaf itself: its gradient is the seed
        x.Grad!.MulInPlace_(2f);
        Assert.Equal(new[] { 3f, 4f }, seed.ToArray());
        Assert.Equal(new[] { 6f, 8f }, x.Grad!.ToArray());
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void AdoptedGradientsAccumulateCorrectlyOverRetainedPasses(DeviceType dt)
    {
        using var scope = new TensorScope();
        var d = On(dt);
        var x = Leaf(d, 1f, -2f, 3f);
        var w = Leaf(d, 0.5f, 0.25f, 2f);
        var y = (x * w).Sum();
        y.Backward(retainGraph: true);
        Assert.Equal(new[] { 0.5f, 0.25f, 2f }, x.Grad!.ToArray());
        Assert.Equal(new[] { 1f, -2f, 3f }, w.Grad!.ToArray());
        // The second pass reads the saved x and w; the in-place accumulation must not have touched them.
        y.Backward();
        Assert.Equal(new[] { 1f, 0.5f, 4f }, x.Grad!.ToArray());
        Assert.Equal(new[] { 2f, -4f, 6f }, w.Grad!.ToArray());
        Assert.Equal(new[] { 1f, -2f, 3f }, x.ToArray());
        Assert.Equal(new[] { 0.5f, 0.25f, 2f }, w.ToArray());
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void ZeroGradClearsTheAccumulator(DeviceType dt)
    {
        using var scope = new TensorScope();
        var x = Leaf(On(dt), 1f, -2f, 3f);
        BackwardSumOfSquares(x);
        x.ZeroGrad();
        Assert.Null(x.Grad);
        BackwardSumOfSquares(x);
        Assert.Equal(new[] { 2f, -4f, 6f }, x.Grad!.ToArray());
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void NoGradScopeBuildsNoGraph(DeviceType dt)
    {
        using var scope = new TensorScope();
        var x = Leaf(On(dt), 1f, 2f);
        Tensor y;
        using (Tensor.NoGrad())
        {
            Assert.False(GradMode.IsEnabled);
            y = (x * x).Sum();
        }
        Assert.True(GradMode.IsEnabled);
        Assert.False(y.RequiresGrad);
        Assert.Null(y.GradFn);
        var e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains("does not require grad", e.Message);
        // Recording resumes after the scope.
        var z = (x * x).Sum();
        Assert.True(z.RequiresGrad);
        Assert.NotNull(z.GradFn);
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void DetachSharesMemoryButCutsTheGraph(DeviceType dt)
    {
        using var scope = new TensorScope();
        var x = Leaf(On(dt), 1f, -2f, 3f);
        var d = x.Detach();
        Assert.False(d.RequiresGrad);
        Assert.True(d.IsLeaf);
        Assert.Equal(x.ToArray(), d.ToArray());
        // z = detach(x)·x: only the second factor carries gradient, so dz/dx = x (not 2x).
        var z = (d * x).Sum();
        z.Backward();
        Assert.Equal(new[] { 1f, -2f, 3f }, x.Grad!.ToArray());
        Assert.Null(d.Grad);
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void BackwardTwiceWithoutRetainGraphThrowsClearly(DeviceType dt)
    {
        using var scope = new TensorScope();
        var x = Leaf(On(dt), 1f, 2f);
        var y = (x * x).Sum();
        y.Backward();
        var e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains("second time", e.Message);
        Assert.Contains("retainGraph", e.Message);
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void RetainGraphAllowsASecondBackward(DeviceType dt)
    {
        using var scope = new TensorScope();
        var x = Leaf(On(dt), 1f, 2f);
        var y = (x * x).Sum();
        y.Backward(retainGraph: true);
        y.Backward();
        Assert.Equal(new[] { 4f, 8f }, x.Grad!.ToArray());
    }

    [Fact]
    public void ShapeErrorsNameTheOpAndBothShapes()
    {
        using var scope = new TensorScope();
        // Shape checks come before any kernel runs, so these hold on every device.
        var a = Tensor.Zeros(2, 3);
        var b = Tensor.Zeros(4, 5);
        var c = Tensor.Zeros(4);

        var mm = Assert.ThrowsAny<ArgumentException>(() => a.MatMul(b));
        Assert.Contains("matmul", mm.Message);
        Assert.Contains("[2, 3]", mm.Message);
        Assert.Contains("[4, 5]", mm.Message);

        foreach (var (op, f) in new (string, Func<Tensor>)[] { ("add", () => a + c), ("sub", () => a - c), ("mul", () => a * c), ("div", () => a / c) })
        {
            var e = Assert.ThrowsAny<ArgumentException>(f);
            Assert.Contains(op, e.Message);
            Assert.Contains("[2, 3]", e.Message);
            Assert.Contains("[4]", e.Message);
        }

        var lin = Assert.ThrowsAny<ArgumentException>(() => Tensor.Linear(a, b));
        Assert.Contains("linear", lin.Message);
        Assert.Contains("[2, 3]", lin.Message);
        Assert.Contains("[4, 5]", lin.Message);

        var rs = Assert.ThrowsAny<ArgumentException>(() => a.Reshape(4, 2));
        Assert.Contains("reshape", rs.Message);
        Assert.Contains("[2, 3]", rs.Message);
        Assert.Contains("[4, 2]", rs.Message);
    }

    [Fact]
    public void RequiresGradIsOnlyForFloatLeaves()
    {
        using var scope = new TensorScope();
        var ids = Tensor.FromArray(new long[] { 1, 2 }, 2);
        Assert.Throws<InvalidOperationException>(() => ids.RequiresGrad_());
        var x = Leaf(Device.Reference, 1f, 2f);
        var y = x * x;
        Assert.Throws<InvalidOperationException>(() => y.RequiresGrad_());
    }

    [Fact]
    public void TensorScopeDisposesTemporariesAndKeepsWhatIsMovedOut()
    {
        Tensor a, b, kept;
        using (var outer = new TensorScope())
        {
            Tensor inner1, innerKept;
            using (var inner = new TensorScope())
            {
                inner1 = Tensor.Zeros(3);
                innerKept = Tensor.Ones(3).MoveToOuterScope();
                Assert.Equal(1, inner.Count);
            }
            Assert.True(inner1.IsDisposed);
            Assert.False(innerKept.IsDisposed);   // now owned by the outer scope

            a = Tensor.Zeros(2);
            b = Tensor.Zeros(2);
            kept = Tensor.Ones(4).MoveToOuterScope();   // no enclosing scope: the caller owns it
            b.Dispose();                                // early disposal is fine
            Assert.Equal(2, outer.Count);               // a and innerKept (b was disposed, kept moved out)
            outer.Dispose();
            Assert.True(innerKept.IsDisposed);
        }
        Assert.True(a.IsDisposed);
        Assert.True(b.IsDisposed);
        Assert.False(kept.IsDisposed);
        Assert.Equal(new[] { 1f, 1f, 1f, 1f }, kept.ToArray());
        kept.Dispose();
        Assert.True(kept.IsDisposed);
    }

    [Fact]
    public void InnerScopesMustBeDisposedFirst()
    {
        var outer = new TensorScope();
        var inner = new TensorScope();
        Assert.Throws<InvalidOperationException>(() => outer.Dispose());
        inner.Dispose();
        outer.Dispose();
    }

    // ------------------------------------------------------------------ dtype conversions

    private static unsafe ushort[] Bits16(Tensor t)
    {
        var p = (ushort*)t.RawPointer;
        return Enumerable.Range(0, (int)t.Numel).Select(i => p[i]).ToArray();
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void BFloat16RoundTripsAndRoundsToNearestEven(DeviceType dt)
    {
        using var scope = new TensorScope();
        var d = On(dt);
        // Exactly representable values (8 significant bits) survive unchanged.
        float[] exact = [0f, 1f, -2.5f, 0.15625f, 65280f, -3.3895314e38f, float.PositiveInfinity, float.NegativeInfinity];
        var x = Tensor.FromArray(exact.AsSpan(), [exact.Length], d);
        var bf = x.To(DType.BFloat16);
        Assert.Equal(DType.BFloat16, bf.DType);
        Assert.Equal(0x3F80, Bits16(bf)[1]);   // 1.0
        Assert.Equal(0xC020, Bits16(bf)[2]);   // -2.5
        Assert.Equal(exact, bf.To(DType.Float32).ToArray());

        // Halfway cases round to the even mantissa; just above halfway rounds up; NaN stays NaN.
        // The third is one float ulp above the 1 + 2⁻⁸ tie (a decimal literal would round back onto the tie).
        float[] rounding = [1.00390625f, 1.01171875f, BitConverter.Int32BitsToSingle(0x3F808001), float.NaN];
        var r = Tensor.FromArray(rounding.AsSpan(), [rounding.Length], d).To(DType.BFloat16).To(DType.Float32).ToArray();
        Assert.Equal(1f, r[0]);
        Assert.Equal(1.015625f, r[1]);
        Assert.Equal(1.0078125f, r[2]);
        Assert.True(float.IsNaN(r[3]));
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void Float16RoundTripsRoundsAndOverflows(DeviceType dt)
    {
        using var scope = new TensorScope();
        var d = On(dt);
        float[] exact = [0f, 1f, -2.5f, 65504f, 6.1035156e-05f, 5.9604645e-08f, -0.099975586f];
        var x = Tensor.FromArray(exact.AsSpan(), [exact.Length], d);
        var h = x.To(DType.Float16);
        var bits = Bits16(h);
        Assert.Equal(0x3C00, bits[1]);   // 1.0
        Assert.Equal(0xC100, bits[2]);   // -2.5
        Assert.Equal(0x7BFF, bits[3]);   // largest finite half
        Assert.Equal(0x0400, bits[4]);   // smallest normal
        Assert.Equal(0x0001, bits[5]);   // smallest subnormal
        Assert.Equal(exact, h.To(DType.Float32).ToArray());

        float[] rounding = [1.00048828125f, 1.00146484375f, 70000f, -70000f, float.NaN];
        var r = Tensor.FromArray(rounding.AsSpan(), [rounding.Length], d).To(DType.Float16).To(DType.Float32).ToArray();
        Assert.Equal(1f, r[0]);                         // 1 + 2⁻¹¹: tie → even (1.0)
        Assert.Equal(1.001953125f, r[1]);               // 1 + 3·2⁻¹¹: tie → even (1 + 2⁻⁹)
        Assert.Equal(float.PositiveInfinity, r[2]);     // overflow
        Assert.Equal(float.NegativeInfinity, r[3]);
        Assert.True(float.IsNaN(r[4]));
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void IntegerConversionsRoundTrip(DeviceType dt)
    {
        using var scope = new TensorScope();
        var d = On(dt);
        long[] values = [0, -1, 7, int.MaxValue, int.MinValue];
        var x = Tensor.FromArray(values.AsSpan(), [values.Length], d);
        var i32 = x.To(DType.Int32);
        Assert.Equal(DType.Int32, i32.DType);
        var back = i32.To(DType.Int64);
        Assert.Equal(DType.Int64, back.DType);
        Assert.Equal(values, back.ToInt64Array());

        long[] small = [3, -7, 1 << 20];
        var f = Tensor.FromArray(small.AsSpan(), [small.Length], d).To(DType.Float32);
        Assert.Equal(new[] { 3f, -7f, 1048576f }, f.ToArray());
        Assert.Equal(small, f.To(DType.Int64).ToInt64Array());
    }

    // ------------------------------------------------------------------ GradCheck itself

    [Fact]
    public void GradCheckPassesACorrectGradientAndLeavesInputsAlone()
    {
        using var scope = new TensorScope();
        var a = Tensor.Randn([3, 4], new Generator(1), 1f, Device.Reference);
        var b = Tensor.Randn([4, 2], new Generator(2), 1f, Device.Reference);
        var before = a.ToArray();
        var report = GradCheck.Check(x => x[0].MatMul(x[1]).Tanh(), [a, b], name: "tanh(a@b)");
        Assert.True(report.Passed);
        Assert.Equal(2, report.Inputs.Count);
        Assert.All(report.Inputs, r => Assert.True(r.RelativeError < 1e-2));
        Assert.Equal(before, a.ToArray());
        Assert.Null(a.Grad);
    }

    [Fact]
    public void GradCheckCatchesAWrongGradient()
    {
        using var scope = new TensorScope();
        var x = Tensor.Randn([7], new Generator(3), 1f, Device.Reference);
        // detach(x)·x: autograd sees one factor (gradient x), the true derivative of x² is 2x.
        var e = Assert.Throws<GradCheckException>(() => GradCheck.Check(t =>
        {
            var d = t[0].Detach();
            return d * t[0];
        }, [x], name: "detached square"));
        Assert.False(e.Report.Passed);
        Assert.Contains("detached square", e.Message);
        Assert.InRange(e.Report.Inputs[0].RelativeError, 0.3, 0.7);
    }

    [Fact]
    public void GradCheckNeverPassesNaN()
    {
        using var scope = new TensorScope();
        // log of negative numbers: every value and gradient is NaN, and NaN must not slip through.
        var x = Tensor.FromArray(new[] { -1f, -2f, -3f }, 3);
        using var xr = x.To(Device.Reference);
        var report = GradCheck.Run(t => t[0].Log(), [xr]);
        Assert.False(report.Passed);
        Assert.True(double.IsNaN(report.WorstRelativeError));
    }
}
