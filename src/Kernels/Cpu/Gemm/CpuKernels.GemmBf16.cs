// Source: bfloat16 products with fp32 accumulation, as torch.matmul under torch.autocast(dtype=bfloat16).
using NativeReasoner.Kernels.Cpu.Gemm;

namespace NativeReasoner.Kernels.Cpu;

public sealed unsafe partial class CpuKernels
{
    /// <summary>
    /// bf16 operands, fp32 accumulation: each batch item's operands are widened to fp32 (exact: bf16 is the
    /// top half of an fp32) into pooled scratch, then the packed SGEMM runs on them. Widening costs
    /// O(M·K + K·N) against the O(M·N·K) product. Not yet done: widening inside the packing routines (no
    /// scratch copy) and a VDPBF16PS micro-kernel for AVX512_BF16 CPUs (.NET exposes no intrinsic for it).
    /// </summary>
    public void GemmBf16(int batch, bool transA, bool transB, int M, int N, int K, float alpha,
        ushort* A, int lda, long strideA, ushort* B, int ldb, long strideB,
        float beta, float* C, int ldc, long strideC)
    {
        if (batch <= 0 || M <= 0 || N <= 0) return;
        // Stored shapes: A is (transA ? K×M : M×K), B is (transB ? N×K : K×N); widened copies are dense.
        int aRows = transA ? K : M, aCols = transA ? M : K;
        int bRows = transB ? N : K, bCols = transB ? K : N;
        long aN = (long)aRows * aCols, bN = (long)bRows * bCols;
        float* scratch = GemmScratch.Rent(aN + bN);
        float* a32 = scratch, b32 = scratch + aN;
        try
        {
            for (int b = 0; b < batch; b++)
            {
                // A broadcast operand (stride 0) is widened once.
                if (b == 0 || strideA != 0) Widen(A + b * strideA, lda, aRows, aCols, a32);
                if (b == 0 || strideB != 0) Widen(B + b * strideB, ldb, bRows, bCols, b32);
                Sgemm.Run(GemmConfig.Current, 1, transA, transB, M, N, K, alpha, a32, Math.Max(aCols, 1), 0,
                    b32, Math.Max(bCols, 1), 0, beta, C + b * strideC, ldc, 0);
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
