namespace NativeReasoner.Kernels;

/// <summary>
/// One decode step of multi-head latent attention (DeepSeek-V2, arXiv:2405.04434 §2.1, absorbed kv_b_proj) on the
/// compressed cache, for a batch of sequences each with its own length. A backend with a kernel for it (CUDA's
/// FlashMLA-style decode) says so by implementing this interface; the model asks for the capability.
/// </summary>
public unsafe interface IMlaDecodeAttention
{
    /// <summary>True when the kernel takes this latent width and RoPE width.</summary>
    bool SupportsMlaDecode(int dLatent, int dRope);

    /// <summary>
    /// q: [batch, heads, dLatent + dRope] (the absorbed no-RoPE query, then the rotated RoPE query); cache: [batch,
    /// capacity, dLatent + dRope] fp32, per token the normalised latent then the rotated shared RoPE key; lengths:
    /// [batch] host ints, 1 ≤ lengths[b] ≤ capacity → o: [batch, heads, dLatent] = softmax(scale · q·cacheᵀ) ·
    /// latent over the first lengths[b] tokens, lse: [batch, heads]. Rows past lengths[b] are never read.
    /// </summary>
    void MlaDecodeAttention(float* q, float* cache, int* lengths, float* o, float* lse, int batch, int heads,
        int capacity, int dLatent, int dRope, float scale);
}
