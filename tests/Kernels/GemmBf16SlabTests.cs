using NativeReasoner.Kernels.Cpu;
using Xunit;
using static NativeReasoner.Tests.Kernels.KernelTestUtil;

namespace NativeReasoner.Tests.Kernels;

/// <summary>
/// The CPU bf16 GEMM widens B in slabs of output columns (never a whole vocabulary-sized fp32 copy): a B wider than
/// one slab, with a partial last slab, in every layout and with a broadcast and a per-item B, equals the reference.
/// </summary>
public unsafe class GemmBf16SlabTests
{
    private static ushort[] RandomBf16(Random rng, long n)
    {
        var a = new ushort[n];
        for (long i = 0; i < n; i++)
            a[i] = (ushort)((BitConverter.SingleToUInt32Bits((float)rng.NextDouble() * 2f - 1f) + 0x8000u) >> 16);
        return a;
    }

    [Theory]
    [InlineData(false, true, 0L)]
    [InlineData(false, false, 0L)]
    [InlineData(true, true, 1L)]
    [InlineData(true, false, 1L)]
    public void BWiderThanOneSlab_MatchesTheReference(bool transA, bool transB, long perItemB)
    {
        const int M = 2, K = 1000, batch = 2;
        // Three slabs, the last one partial (a slab is MaxWidenedBFloats / K columns).
        int slab = (int)(CpuKernels.MaxWidenedBFloats / K);
        int N = 2 * slab + 612;
        var rng = new Random(2026 + (transA ? 2 : 0) + (transB ? 1 : 0));
        long strideA = (long)M * K, strideB = perItemB * K * N, strideC = (long)M * N;
        var a = RandomBf16(rng, strideA * batch);
        var b = RandomBf16(rng, (long)K * N * (perItemB == 0 ? 1 : batch));
        var cRef = new float[strideC * batch];
        var cCpu = new float[strideC * batch];
        // Accumulating into C (beta = 0.5) checks every slab writes only its own columns.
        for (int i = 0; i < cRef.Length; i++) cRef[i] = cCpu[i] = (float)rng.NextDouble();
        int lda = transA ? M : K, ldb = transB ? K : N;
        fixed (ushort* pa = a, pb = b)
        fixed (float* pr = cRef, pc = cCpu)
        {
            Ref.GemmBf16(batch, transA, transB, M, N, K, 1f, pa, lda, strideA, pb, ldb, strideB, 0.5f, pr, N, strideC);
            Cpu.GemmBf16(batch, transA, transB, M, N, K, 1f, pa, lda, strideA, pb, ldb, strideB, 0.5f, pc, N, strideC);
        }
        AssertClose(cCpu, cRef, 1e-5, $"slabs transA={transA} transB={transB}");
    }
}
