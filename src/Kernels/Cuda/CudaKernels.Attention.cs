namespace NativeReasoner.Kernels.Cuda;

// PENDING: the kernels of this family are being written; every method below throws until then.
public sealed unsafe partial class CudaKernels
{
    public void AttentionForward(float* q, float* k, float* v, float* o, float* lse, int BH, int Tq, int Tk, int Dk, int Dv, float scale, bool causal) => throw Pending(nameof(AttentionForward));

    public void AttentionBackward(float* q, float* k, float* v, float* o, float* lse, float* dO, float* dq, float* dk, float* dv, int BH, int Tq, int Tk, int Dk, int Dv, float scale, bool causal) => throw Pending(nameof(AttentionBackward));
}
