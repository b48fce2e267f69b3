using NativeReasoner.Kernels.Memory;
using Xunit;

namespace NativeReasoner.Tests.Verification;

/// <summary>
/// BufferPool.Shared.LiveBytes is process-wide, so these tests must not overlap with any other test that
/// allocates: this collection runs on its own, after the parallel ones.
/// </summary>
[CollectionDefinition(nameof(LiveBytesCollection), DisableParallelization = true)]
public sealed class LiveBytesCollection;

[Collection(nameof(LiveBytesCollection))]
public class MemoryLeakTests
{
    public static IEnumerable<object[]> Devices => [[DeviceType.Reference], [DeviceType.Cpu]];

    private static Device On(DeviceType t) => t == DeviceType.Cpu ? Device.Cpu : Device.Reference;

    // A small training-like step: views, broadcasting, matmul, nonlinearity, reduction, backward.
    private static float[] Step(Device d, bool backward)
    {
        var g = new Generator(42);
        var x = Tensor.Randn([5, 7], g, 1f, d);
        var w = Tensor.Randn([3, 7], g, 1f, d).RequiresGrad_();
        var b = Tensor.Randn([3], g, 1f, d).RequiresGrad_();
        var h = Tensor.Linear(x, w, b).Tanh();
        var s = h.Narrow(1, 0, 2).Mul(h.Slice(1, 1, 3));
        var loss = s.Permute(1, 0).Mean();
        if (!backward) return loss.ToArray();
        loss.Backward();
        return w.Grad!.ToArray().Concat(b.Grad!.ToArray()).ToArray();
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void ScopedForwardAndBackwardReturnEveryByte(DeviceType dt)
    {
        var d = On(dt);
        // Warm-up: lazily created singletons (worker pool, caches) must not count as a leak.
        using (new TensorScope()) Step(d, backward: true);
        long before = BufferPool.Shared.LiveBytes;
        float[] grads;
        using (new TensorScope()) grads = Step(d, backward: true);
        Assert.Equal(before, BufferPool.Shared.LiveBytes);
        Assert.All(grads, v => Assert.True(float.IsFinite(v)));
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void ScopedForwardWithoutBackwardFreesTheGraph(DeviceType dt)
    {
        var d = On(dt);
        using (new TensorScope()) Step(d, backward: false);
        long before = BufferPool.Shared.LiveBytes;
        using (new TensorScope()) Step(d, backward: false);
        Assert.Equal(before, BufferPool.Shared.LiveBytes);
    }

    [Fact]
    public void DisposingIntermediatesEarlyDoesNotCutTheGraphOrLeak()
    {
        long before = BufferPool.Shared.LiveBytes;
        using (new TensorScope())
        {
            var x = Tensor.FromArray(new[] { 1f, 2f, 3f }.AsSpan(), [3], Device.Reference).RequiresGrad_();
            var y = x.Mul(x);
            var z = y.Mul(3f);
            y.Dispose();   // still needed by z's backward: the graph must keep it alive
            var loss = z.Sum();
            loss.Backward();
            Assert.Equal(new[] { 6f, 12f, 18f }, x.Grad!.ToArray());
        }
        Assert.Equal(before, BufferPool.Shared.LiveBytes);
    }
}
