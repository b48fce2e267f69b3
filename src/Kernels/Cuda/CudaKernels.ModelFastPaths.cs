// Source: FlashAttention-2 (arXiv:2307.08691) and DeepSeek-V2 MLA decode (arXiv:2405.04434 §2.1): the capabilities
//         the model's fast paths ask for, over the kernels of CudaKernels.AttentionBf16.cs and .Attention.cs.
namespace NativeReasoner.Kernels.Cuda;

/// <summary>The bf16 flash attention and MLA decode kernels, offered to the model as capabilities.</summary>
public sealed unsafe partial class CudaKernels : IBf16FlashAttention, IMlaDecodeAttention
{
    /// <inheritdoc/>
    /// <remarks>The mma k-step is 16 columns and the widest compiled variant holds 256.</remarks>
    public bool SupportsBf16Attention(int Dk, int Dv) =>
        Dk is >= 16 and <= 256 && Dk % 16 == 0 && Dv is >= 16 and <= 256 && Dv % 16 == 0;

    /// <inheritdoc/>
    public bool SupportsMlaDecode(int dLatent, int dRope) =>
        dLatent is > 0 and <= MaxMlaLatent && dRope >= 0 && dLatent + dRope <= MaxMlaHeadDim;

    /// <inheritdoc/>
    /// <remarks>The host lengths are uploaded on the stream (no wait); the fp32 cache runs on CUDA cores.</remarks>
    public void MlaDecodeAttention(float* q, float* cache, int* lengths, float* o, float* lse, int batch, int heads,
        int capacity, int dLatent, int dRope, float scale)
    {
        if (batch < 0 || heads < 0 || capacity <= 0)
            throw new ArgumentException(
                $"MlaDecodeAttention: batch {batch} and heads {heads} must be ≥ 0 and the capacity {capacity} ≥ 1");
        if (!SupportsMlaDecode(dLatent, dRope))
            throw new NotSupportedException($"MlaDecodeAttention supports dLatent in 1..{MaxMlaLatent} and dLatent + " +
                                            $"dRope ≤ {MaxMlaHeadDim} (got {dLatent} + {dRope})");
        for (int b = 0; b < batch; b++)
            if (lengths[b] < 1 || lengths[b] > capacity)
                throw new ArgumentException(
                    $"MlaDecodeAttention: lengths[{b}] = {lengths[b]} is outside 1..{capacity} (the cache capacity)");
        if (batch == 0 || heads == 0) return;
        var lens = Upload(new ReadOnlySpan<int>(lengths, batch));
        try
        {
            MlaDecode(q, cache, false, (int*)lens.Pointer, o, lse, batch, heads, capacity, dLatent, dRope, scale);
        }
        finally
        {
            lens.Release(); // stream-ordered: the launches above are queued first
        }
    }
}
