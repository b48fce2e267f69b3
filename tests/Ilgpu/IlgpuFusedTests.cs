using Xunit;
using static NativeReasoner.Tests.Ilgpu.DeviceArena;
using static NativeReasoner.Tests.Ilgpu.IlgpuTestUtil;

namespace NativeReasoner.Tests.Ilgpu;

/// <summary>IlgpuKernels vs ReferenceKernels: the fused SwiGLU and log-softmax-gather kernels, and bf16 GEMM.</summary>
public sealed unsafe class IlgpuFusedTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(1031)]
    public void SiluMulAndBackward(int n)
    {
        var rng = new Random(n);
        var g = Rand(rng, n, -8f, 8f); var u = Rand(rng, n, -2f, 2f); var dy = Rand(rng, n);
        var y = new float[n]; var dg = new float[n]; var du = new float[n];
        fixed (float* pg = g, pu = u, pd = dy, py = y, pdg = dg, pdu = du)
        {
            Ref.SiluMul(pg, pu, py, n);
            Ref.SiluMulBackward(pg, pu, pd, pdg, pdu, n);
        }
        using var d = new DeviceArena();
        float* dG = d.Up(g), dU = d.Up(u), dD = d.Up(dy), dY = d.Alloc<float>(n), dDG = d.Alloc<float>(n), dDU = d.Alloc<float>(n);
        K.SiluMul(dG, dU, dY, n);
        K.SiluMulBackward(dG, dU, dD, dDG, dDU, n);
        Close(d.Down(dY, n), y, Elementwise, "silu_mul");
        Close(d.Down(dDG, n), dg, Elementwise, "dgate");
        Close(d.Down(dDU, n), du, Elementwise, "dup");
    }

    [Theory]
    [InlineData(1, 5)]
    [InlineData(13, 1021)]
    public void LogSoftmaxGatherAndBackward(int rows, int V)
    {
        var rng = new Random(rows * 31 + V);
        var x = Rand(rng, (long)rows * V, -6f, 6f);
        var ids = Enumerable.Range(0, rows).Select(_ => (long)rng.Next(V)).ToArray();
        var dlogp = Rand(rng, rows);
        const float invT = 1f / 0.7f;
        var logp = new float[rows]; var lse = new float[rows]; var dx = new float[x.Length];
        fixed (float* px = x, pl = logp, ps = lse, pd = dlogp, pdx = dx)
        fixed (long* pi = ids)
        {
            Ref.LogSoftmaxGather(px, pi, pl, ps, rows, V, invT);
            Ref.LogSoftmaxGatherBackward(px, pi, ps, pd, pdx, rows, V, invT);
        }
        using var d = new DeviceArena();
        float* dX = d.Up(x), dP = d.Alloc<float>(rows), dS = d.Alloc<float>(rows), dDL = d.Up(dlogp), dDX = d.Alloc<float>(x.Length);
        long* dI = d.Up(ids);
        K.LogSoftmaxGather(dX, dI, dP, dS, rows, V, invT);
        K.LogSoftmaxGatherBackward(dX, dI, dS, dDL, dDX, rows, V, invT);
        Close(d.Down(dP, rows), logp, Accumulating, "logp");
        Close(d.Down(dS, rows), lse, Accumulating, "lse");
        Close(d.Down(dDX, x.Length), dx, Accumulating, "dlogits");
    }

    [Theory]
    [InlineData(7, 13, 5, false, false, 0f)]
    [InlineData(33, 17, 40, true, true, 0.5f)]
    public void GemmBf16(int M, int N, int K_, bool ta, bool tb, float beta)
    {
        var rng = new Random(M + N + K_);
        int lda = ta ? M : K_, ldb = tb ? K_ : N;
        var a = Enumerable.Range(0, M * K_).Select(_ => (ushort)(BitConverter.SingleToUInt32Bits((float)rng.NextDouble() - 0.5f) >> 16)).ToArray();
        var b = Enumerable.Range(0, K_ * N).Select(_ => (ushort)(BitConverter.SingleToUInt32Bits((float)rng.NextDouble() - 0.5f) >> 16)).ToArray();
        var c = Rand(rng, (long)M * N);
        var expected = (float[])c.Clone();
        fixed (ushort* pa = a, pb = b)
        fixed (float* pc = expected)
            Ref.GemmBf16(1, ta, tb, M, N, K_, 1.5f, pa, lda, 0, pb, ldb, 0, beta, pc, N, 0);
        using var d = new DeviceArena();
        float* dC = d.Up(c);
        K.GemmBf16(1, ta, tb, M, N, K_, 1.5f, d.Up(a), lda, 0, d.Up(b), ldb, 0, beta, dC, N, 0);
        Close(d.Down(dC, c.Length), expected, Accumulating, "gemm_bf16");
    }
}
