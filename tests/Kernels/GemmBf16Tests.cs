using Xunit;
using static NativeReasoner.Tests.Kernels.KernelTestUtil;

namespace NativeReasoner.Tests.Kernels;

/// <summary>bf16-operand GEMM (fp32 accumulation) against the double-accumulated reference.</summary>
public unsafe class GemmBf16Tests
{
    private static ushort[] RandomBf16(Random rng, long n)
    {
        var a = new ushort[n];
        // Round to nearest: the top 16 bits of a float, so the values are exact bf16 numbers.
        for (long i = 0; i < n; i++) a[i] = (ushort)((BitConverter.SingleToUInt32Bits((float)rng.NextDouble() * 2f - 1f) + 0x8000u) >> 16);
        return a;
    }

    [Fact]
    public void BroadcastOperandIsReused()
    {
        // strideB = 0: every batch item multiplies by the same B (a shared weight).
        var rng = new Random(1750);
        const int M = 19, N = 23, K = 37, batch = 3;
        var a = RandomBf16(rng, (long)M * K * batch);
        var b = RandomBf16(rng, (long)K * N);
        var cRef = new float[M * N * batch];
        var cCpu = new float[M * N * batch];
        fixed (ushort* pa = a, pb = b)
        fixed (float* pr = cRef, pc = cCpu)
        {
            Ref.GemmBf16(batch, false, false, M, N, K, 1f, pa, K, (long)M * K, pb, N, 0, 0f, pr, N, (long)M * N);
            Cpu.GemmBf16(batch, false, false, M, N, K, 1f, pa, K, (long)M * K, pb, N, 0, 0f, pc, N, (long)M * N);
        }
        AssertClose(cCpu, cRef, 1e-5, "broadcast B");
    }
}
