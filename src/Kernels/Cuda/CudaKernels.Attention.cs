namespace NativeReasoner.Kernels.Cuda;

// PENDING: the kernels of this family are being written; every method below throws until then.
public sealed unsafe partial class CudaKernels
{
    public void AttentionForward(float* q, float* k, float* v, float* o, float* lse, int BH, int Tq, int Tk, int Dk, int Dv, float scale, bool causal) => throw Pending(nameof(AttentionForward));

    public void AttentionBackward(float* q, float* k, float* v, float* o, float* lse, float* dO, float* dq, float* dk, float* dv, int BH, int Tq, int Tk, int Dk, int Dv, float scale, bool causal) => throw Pending(nameof(AttentionBackward));

    /// <summary>
    /// Multi-head latent attention decode on the compressed cache (FlashMLA's layout), one query token per
    /// sequence, absorbed kv_b_proj: q: [batch, heads, dLatent + dRope] (the absorbed no-rope part, then the
    /// rotated rope part); cache: [batch, maxLen, dLatent + dRope] per token the normalised latent then the
    /// rotated k_pe, fp32 or bf16 bits (<paramref name="cacheBf16"/>); the value of a token is its latent
    /// (the first dLatent columns). cacheLengths: [batch] device ints, 1 ≤ len ≤ maxLen (variable lengths).
    /// o: [batch, heads, dLatent] = softmax(scale · q·cacheᵀ) · latent over the first len tokens;
    /// lse: [batch, heads] (natural log-sum-exp of the scaled scores). Long caches are split over the
    /// sequence and the partial results merged.
    /// </summary>
    public void MlaDecode(float* q, void* cache, bool cacheBf16, int* cacheLengths, float* o, float* lse,
        int batch, int heads, int maxLen, int dLatent, int dRope, float scale) => throw Pending(nameof(MlaDecode));
}
