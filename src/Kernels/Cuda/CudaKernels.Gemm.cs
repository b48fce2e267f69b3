namespace NativeReasoner.Kernels.Cuda;

// PENDING: the kernels of this family are being written; every method below throws until then.
public sealed unsafe partial class CudaKernels
{
    public void Gemm(int batch, bool transA, bool transB, int M, int N, int K, float alpha, float* A, int lda, long strideA, float* B, int ldb, long strideB, float beta, float* C, int ldc, long strideC) => throw Pending(nameof(Gemm));

    public void GemmBf16(int batch, bool transA, bool transB, int M, int N, int K, float alpha, ushort* A, int lda, long strideA, ushort* B, int ldb, long strideB, float beta, float* C, int ldc, long strideC) => throw Pending(nameof(GemmBf16));

    public void GemmGrouped(int count, bool transA, bool transB, int* M, int N, int* K, float alpha, float** A, int lda, float** B, int ldb, float beta, float** C, int ldc) => throw Pending(nameof(GemmGrouped));
}
