namespace NativeReasoner.Kernels.Cpu;

// Placeholder bodies: each is replaced by its real implementation in its own file.
public sealed unsafe partial class CpuKernels
{
    public void Gemm(int batch, bool transA, bool transB, int M, int N, int K, float alpha, float* A, int lda, long strideA, float* B, int ldb, long strideB, float beta, float* C, int ldc, long strideC) => throw new NotImplementedException("CpuKernels.Gemm");
    public void AttentionForward(float* q, float* k, float* v, float* o, float* lse, int BH, int Tq, int Tk, int Dk, int Dv, float scale, bool causal) => throw new NotImplementedException("CpuKernels.AttentionForward");
    public void AttentionBackward(float* q, float* k, float* v, float* o, float* lse, float* dO, float* dq, float* dk, float* dv, int BH, int Tq, int Tk, int Dk, int Dv, float scale, bool causal) => throw new NotImplementedException("CpuKernels.AttentionBackward");
}
