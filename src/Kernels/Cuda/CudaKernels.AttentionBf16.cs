namespace NativeReasoner.Kernels.Cuda;

// PENDING: the kernels of this family are being written; every method below throws until then.
public sealed unsafe partial class CudaKernels
{
    /// <summary>
    /// Flash attention on bf16 tensor cores (mma.sync, fp32 accumulation and softmax): the layouts and the
    /// causal rule of <see cref="IKernels.AttentionForward"/>, with q, k, v and o as bf16 bits; lse fp32.
    /// </summary>
    public void AttentionForwardBf16(ushort* q, ushort* k, ushort* v, ushort* o, float* lse,
        int BH, int Tq, int Tk, int Dk, int Dv, float scale, bool causal) => throw Pending(nameof(AttentionForwardBf16));

    /// <summary>Backward of <see cref="AttentionForwardBf16"/>: dq, dk, dv (bf16, overwritten) from dO (bf16), o and lse.</summary>
    public void AttentionBackwardBf16(ushort* q, ushort* k, ushort* v, ushort* o, float* lse, ushort* dO,
        ushort* dq, ushort* dk, ushort* dv, int BH, int Tq, int Tk, int Dk, int Dv, float scale, bool causal) =>
        throw Pending(nameof(AttentionBackwardBf16));
}
