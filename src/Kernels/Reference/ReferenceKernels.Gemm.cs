// Source: Goto & van de Geijn, "Anatomy of high-performance matrix multiplication" (TOMS 2008) and BLIS's micro-kernel
//         design; the semantics of BLAS sgemm.
namespace NativeReasoner.Kernels.Reference;

public sealed unsafe partial class ReferenceKernels
{
    /// <summary>
    /// C[b] = alpha · op(A[b]) · op(B[b]) + beta · C[b]: one double-accumulated dot product per output.
    /// op(A)[i, p] = transA ? A[p·lda + i] : A[i·lda + p]; op(B)[p, j] = transB ? B[j·ldb + p] : B[p·ldb + j].
    /// </summary>
    public void Gemm(int batch, bool transA, bool transB, int M, int N, int K, float alpha,
        float* A, int lda, long strideA, float* B, int ldb, long strideB,
        float beta, float* C, int ldc, long strideC)
    {
        // Element strides of op(A) and op(B): op(A)[i, p] = a[i·aRow + p·aCol], op(B)[p, j] = b[p·bRow + j·bCol].
        long aRow = transA ? 1 : lda, aCol = transA ? lda : 1;
        long bRow = transB ? 1 : ldb, bCol = transB ? ldb : 1;
        for (int b = 0; b < batch; b++)
        {
            float* a = A + b * strideA, bm = B + b * strideB, c = C + b * strideC;
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++)
                {
                    double sum = 0;
                    for (int p = 0; p < K; p++) sum += (double)a[i * aRow + p * aCol] * bm[p * bRow + j * bCol];
                    float* cij = c + (long)i * ldc + j;
                    // beta = 0: C is write-only (it may hold NaN), so it must not even be multiplied.
                    *cij = beta == 0f ? (float)(alpha * sum) : (float)(alpha * sum + (double)beta * *cij);
                }
        }
    }
}
