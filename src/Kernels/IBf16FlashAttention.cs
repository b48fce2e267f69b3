namespace NativeReasoner.Kernels;

/// <summary>
/// Flash attention (FlashAttention-2, arXiv:2307.08691) with bfloat16 q, k, v, o and gradients, fp32 accumulation
/// and softmax: what autocast uses for attention in training and prefill. A backend with tensor-core kernels for it
/// (CUDA) says so by implementing this interface. Layouts, grouped K/V heads and the causal rule are those of
/// <see cref="IKernels.AttentionForward"/> and <see cref="IKernels.AttentionBackward"/>, with bf16 bits in place of
/// the float32 buffers (lse stays fp32).
/// </summary>
public unsafe interface IBf16FlashAttention
{
    /// <summary>True when the kernels take head dims Dk and Dv.</summary>
    bool SupportsBf16Attention(int Dk, int Dv);

    /// <summary>
    /// q: [BH, Tq, Dk], k: [BH / kvGroup, Tk, Dk], v: [BH / kvGroup, Tk, Dv] → o: [BH, Tq, Dv], lse: [BH, Tq].
    /// </summary>
    void AttentionForwardBf16(ushort* q, ushort* k, ushort* v, ushort* o, float* lse,
        int BH, int Tq, int Tk, int Dk, int Dv, float scale, bool causal, int kvGroup);

    /// <summary>dq, dk, dv (overwritten) from dO, with o and lse of the forward.</summary>
    void AttentionBackwardBf16(ushort* q, ushort* k, ushort* v, ushort* o, float* lse, ushort* dO,
        ushort* dq, ushort* dk, ushort* dv, int BH, int Tq, int Tk, int Dk, int Dv, float scale, bool causal,
        int kvGroup);
}
