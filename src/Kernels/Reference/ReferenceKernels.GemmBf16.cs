// Source: bfloat16 products with fp32 accumulation, as torch.matmul under torch.autocast(dtype=bfloat16).
namespace NativeReasoner.Kernels.Reference;

public sealed unsafe partial class ReferenceKernels
{
    private static double Bf16(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>The <see cref="Gemm"/> oracle over bf16 operands: every product and sum in double.</summary>
    public void GemmBf16(int batch, bool transA, bool transB, int M, int N, int K, float alpha,
        ushort* A, int lda, long strideA, ushort* B, int ldb, long strideB,
        float beta, float* C, int ldc, long strideC)
    {
        long aRow = transA ? 1 : lda, aCol = transA ? lda : 1;
        long bRow = transB ? 1 : ldb, bCol = transB ? ldb : 1;
        for (int b = 0; b < batch; b++)
        {
            ushort* a = A + b * strideA, bm = B + b * strideB;
            float* c = C + b * strideC;
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++)
                {
                    double sum = 0;
                    for (int p = 0; p < K; p++) sum += Bf16(a[i * aRow + p * aCol]) * Bf16(bm[p * bRow + j * bCol]);
                    float* cij = c + (long)i * ldc + j;
                    *cij = beta == 0f ? (float)(alpha * sum) : (float)(alpha * sum + (double)beta * *cij);
                }
        }
    }
}
