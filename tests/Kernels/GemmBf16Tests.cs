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

    [Theory]
    // M, N, K, batch, transA, transB, beta, padding of the leading dimensions
    [InlineData(1, 1, 1, 1, false, false, 0f, 0)]
    [InlineData(7, 13, 5, 1, false, false, 0f, 0)]
    [InlineData(67, 45, 131, 1, false, true, 0f, 0)]     // a Linear layer's forward: x·Wᵀ
    [InlineData(45, 67, 131, 1, true, false, 0.5f, 0)]   // a weight gradient: dyᵀ·x, accumulating
    [InlineData(129, 97, 33, 2, true, true, 0f, 3)]      // batched, padded rows
    [InlineData(8, 33, 0, 1, false, false, 0.5f, 0)]     // K = 0: C = beta·C
    public void MatchesReference(int M, int N, int K, int batch, bool ta, bool tb, float beta, int pad)
    {
        var rng = new Random(1700 + M * 7 + N + K);
        int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
        long strideA = (long)(ta ? K : M) * lda, strideB = (long)(tb ? N : K) * ldb, strideC = (long)M * ldc;
        var a = RandomBf16(rng, Math.Max(1, strideA * batch));
        var b = RandomBf16(rng, Math.Max(1, strideB * batch));
        var cRef = Uniform(rng, strideC * batch);
        var cCpu = (float[])cRef.Clone();
        fixed (ushort* pa = a, pb = b)
        fixed (float* pr = cRef, pc = cCpu)
        {
            Ref.GemmBf16(batch, ta, tb, M, N, K, 0.75f, pa, lda, strideA, pb, ldb, strideB, beta, pr, ldc, strideC);
            Cpu.GemmBf16(batch, ta, tb, M, N, K, 0.75f, pa, lda, strideA, pb, ldb, strideB, beta, pc, ldc, strideC);
        }
        AssertClose(cCpu, cRef, 1e-5, $"gemm_bf16 {M}x{N}x{K} b={batch} ta={ta} tb={tb}");
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
