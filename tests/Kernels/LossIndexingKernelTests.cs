using Xunit;
using static NativeReasoner.Tests.Kernels.KernelTestUtil;

namespace NativeReasoner.Tests.Kernels;

public unsafe class LossIndexingKernelTests
{
    [Fact]
    public void Reference_CrossEntropy_HandValues()
    {
        float[] logits = [1, 2, 3, 1000, 1000, 1000];
        long[] targets = [0, 2];
        var loss = new float[2]; var lse = new float[2];
        float[] dloss = [1f, 0.5f];
        var g = new float[6];
        fixed (float* px = logits, pl = loss, ps = lse, pd = dloss, pg = g)
        fixed (long* pt = targets)
        {
            Ref.CrossEntropy(px, pt, pl, ps, 2, 3, -1);
            Ref.CrossEntropyBackward(px, ps, pt, pd, pg, 2, 3, -1);
        }
        double z = Math.Log(Math.Exp(1) + Math.Exp(2) + Math.Exp(3)); // 3.4076059
        Assert.Equal(z, lse[0], 5);
        Assert.Equal(z - 1, loss[0], 5);                // 2.4076059
        Assert.Equal(Math.Log(3), loss[1], 4);          // uniform over 3, no overflow at 1000
        Assert.Equal(Math.Exp(1 - z) - 1, g[0], 5);
        // lse ≈ 1001.1 is stored as float (ulp 6e-5), which limits the gradient of the second row.
        Assert.Equal(0.5 * (1.0 / 3 - 1), g[5], 4);
    }

    [Fact]
    public void Reference_TopK_TiesAndNaN()
    {
        float[] x = [1f, 3f, 3f, float.NaN, 2f, 3f, float.NaN];
        var v = new float[4];
        var i = new long[4];
        fixed (float* px = x, pv = v)
        fixed (long* pi = i)
            Ref.TopK(px, pv, pi, 1, 7, 4);
        Assert.Equal([3L, 6L, 1L, 2L], i);
        Assert.True(float.IsNaN(v[0]) && float.IsNaN(v[1]));
        Assert.Equal(3f, v[2]);
        fixed (float* px = x, pv = v)
        fixed (long* pi = i)
            Cpu.TopK(px, pv, pi, 1, 7, 4);
        Assert.Equal([3L, 6L, 1L, 2L], i);
    }
}
