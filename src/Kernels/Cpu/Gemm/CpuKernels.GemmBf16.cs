// Source: bfloat16 products with fp32 accumulation, as torch.matmul under torch.autocast(dtype=bfloat16).
using NativeReasoner.Kernels.Cpu.Gemm;

namespace NativeReasoner.Kernels.Cpu;

public sealed unsafe partial class CpuKernels
{
    /// <summary>
    /// Most floats of B widened at a time (16 MiB): B goes in slabs of output columns, so a vocabulary-sized weight
    /// (an lm_head of 151,936 × 1,536 is 0.9 GB as fp32) never needs a whole fp32 copy, which the scratch pool would
    /// then keep for the life of the process (resident memory grew by gigabytes once generation started).
    /// </summary>
    internal const long MaxWidenedBFloats = 4L << 20;

    /// <summary>
    /// bf16 operands, fp32 accumulation: A is widened to fp32 (exact: bf16 is the top half of an fp32) into pooled
    /// scratch, B slab by slab of at most <see cref="MaxWidenedBFloats"/> (whole when it fits, and then once for a
    /// broadcast B), and the packed SGEMM runs on each slab's columns of C. Widening costs O(M·K + K·N) against the
    /// O(M·N·K) product; slabs re-pack A once per slab (O(M·K·N / slab width)). Not yet done: widening inside the
    /// packing routines (no scratch copy) and a VDPBF16PS micro-kernel for AVX512_BF16 CPUs (.NET exposes no
    /// intrinsic for it).
    /// </summary>
    public void GemmBf16(int batch, bool transA, bool transB, int M, int N, int K, float alpha,
        ushort* A, int lda, long strideA, ushort* B, int ldb, long strideB,
        float beta, float* C, int ldc, long strideC)
    {
        if (batch <= 0 || M <= 0 || N <= 0) return;
        // Stored shapes: A is (transA ? K×M : M×K), B is (transB ? N×K : K×N); widened copies are dense.
        int aRows = transA ? K : M, aCols = transA ? M : K;
        long aN = (long)aRows * aCols;
        // Slab width: output columns whose B fits the limit (at least 64, so a huge K still makes progress).
        int slab = (int)Math.Min(N, Math.Max(64, MaxWidenedBFloats / Math.Max(K, 1)));
        float* scratch = GemmScratch.Rent(aN + (long)slab * K);
        float* a32 = scratch, b32 = scratch + aN;
        try
        {
            for (int b = 0; b < batch; b++)
            {
                // A broadcast operand (stride 0) is widened once.
                if (b == 0 || strideA != 0) Widen(A + b * strideA, lda, aRows, aCols, a32);
                for (int n0 = 0; n0 < N; n0 += slab)
                {
                    int width = Math.Min(slab, N - n0);
                    // A broadcast B that fits in one slab is widened once too.
                    if (b == 0 || strideB != 0 || slab < N)
                    {
                        if (transB) Widen(B + b * strideB + (long)n0 * ldb, ldb, width, K, b32);
                        else Widen(B + b * strideB + n0, ldb, K, width, b32);
                    }
                    Sgemm.Run(GemmConfig.Current, 1, transA, transB, M, width, K, alpha, a32, Math.Max(aCols, 1), 0,
                        b32, Math.Max(transB ? K : width, 1), 0, beta, C + b * strideC + n0, ldc, 0);
                }
            }
        }
        finally
        {
            GemmScratch.Return(scratch);
        }
    }

    /// <summary>rows × cols bf16 with row stride ld → dense fp32 (one parallel conversion when already dense).</summary>
    private void Widen(ushort* src, int ld, int rows, int cols, float* dst)
    {
        if (rows == 0 || cols == 0) return;
        if (ld == cols) BFloat16ToFloat(src, dst, (long)rows * cols);
        else for (int r = 0; r < rows; r++) BFloat16ToFloat(src + (long)r * ld, dst + (long)r * cols, cols);
    }
}
