// Source: Goto & van de Geijn, "Anatomy of high-performance matrix multiplication" (TOMS 2008) and BLIS's micro-kernel
//         design; the semantics of BLAS sgemm.
using NativeReasoner.Kernels.Cpu.Gemm;

namespace NativeReasoner.Kernels.Cpu;

public sealed unsafe partial class CpuKernels
{
    /// <summary>Packed, cache-blocked, AVX-512/AVX2 SGEMM on both cores; see <see cref="Sgemm"/>.</summary>
    public void Gemm(int batch, bool transA, bool transB, int M, int N, int K, float alpha,
        float* A, int lda, long strideA, float* B, int ldb, long strideB,
        float beta, float* C, int ldc, long strideC) =>
        Sgemm.Run(GemmConfig.Current, batch, transA, transB, M, N, K, alpha, A, lda, strideA, B, ldb, strideB,
            beta, C, ldc, strideC);
}
