// Source: FlashAttention-2 (arXiv:2307.08691): tiled attention with an online softmax and a saved log-sum-exp; grouped
//         K/V heads as GQA (arXiv:2305.13245).
namespace NativeReasoner.Kernels.Cuda;

/// <summary>
/// fp32 attention (kernels/cuda/attention.cu) and MLA decode on the compressed cache (kernels/cuda/mla_decode.cu).
/// The designs are described at the top of those files; the shared-memory sizes here mirror their layouts.
/// </summary>
public sealed unsafe partial class CudaKernels
{
    /// <summary>Largest head dimension (Dk and Dv) of <see cref="AttentionForward"/> / <see cref="AttentionBackward"/>.</summary>
    public const int MaxAttentionHeadDim = 256;

    /// <summary>Largest dLatent + dRope of <see cref="MlaDecode"/>; dLatent is at most <see cref="MaxMlaLatent"/>.</summary>
    public const int MaxMlaHeadDim = 576;

    /// <summary>Largest dLatent of <see cref="MlaDecode"/> (the CUDA-core kernel keeps 16 chunks of 32 columns in registers).</summary>
    public const int MaxMlaLatent = 512;

    private const int AttnTile = 32;

    private static readonly string[] s_fwdKernels = ["nr_attention_fwd_f32_c2", "nr_attention_fwd_f32_c4", "nr_attention_fwd_f32_c8"];
    private static readonly string[] s_dqKernels = ["nr_attention_bwd_dq_f32_c2", "nr_attention_bwd_dq_f32_c4", "nr_attention_bwd_dq_f32_c8"];
    private static readonly string[] s_dkdvKernels = ["nr_attention_bwd_dkdv_f32_c2", "nr_attention_bwd_dkdv_f32_c4", "nr_attention_bwd_dkdv_f32_c8"];

    /// <summary>nr_attn_stride of attention.cuh: columns rounded up to 32, plus 4 (stride / 4 odd).</summary>
    private static int AttnStride(int cols) => ((cols + 31) & ~31) + 4;

    /// <summary>The kernel variant by register chunks (0: ≤ 64 columns, 1: ≤ 128, 2: ≤ 256).</summary>
    private static int AttentionVariant(int Dk, int Dv)
    {
        if (Dk <= 0 || Dv <= 0) throw new ArgumentOutOfRangeException(nameof(Dk), $"attention head dims must be positive (Dk {Dk}, Dv {Dv})");
        int d = Math.Max(Dk, Dv);
        if (d > MaxAttentionHeadDim)
            throw new NotSupportedException($"CUDA fp32 attention supports head dims up to {MaxAttentionHeadDim} (Dk {Dk}, Dv {Dv}): the accumulators live in registers");
        return d <= 64 ? 0 : d <= 128 ? 1 : 2;
    }

    private static uint Blocks(long tiles, long bh)
    {
        long n = tiles * bh;
        if (n > int.MaxValue) throw new NotSupportedException($"attention grid of {n} blocks");
        return (uint)n;
    }

    public void AttentionForward(float* q, float* k, float* v, float* o, float* lse, int BH, int Tq, int Tk, int Dk,
        int Dv, float scale, bool causal, int kvGroup)
    {
        AttentionHeads.KvRows(nameof(AttentionForward), BH, kvGroup);
        if (BH <= 0 || Tq <= 0) return;
        int variant = AttentionVariant(Dk, Dv);
        int qs = AttnStride(Dk), vs = AttnStride(Dv);
        // Q [32][qs] | K [32][qs] | V [32][vs] | p strips [4 warps][8 rows][32]
        int shared = (2 * AttnTile * qs + AttnTile * vs + 4 * 8 * AttnTile) * sizeof(float);
        int qTiles = (Tq + AttnTile - 1) / AttnTile, causalFlag = causal ? 1 : 0;
        void** a = stackalloc void*[13];
        a[0] = &q; a[1] = &k; a[2] = &v; a[3] = &o; a[4] = &lse;
        a[5] = &Tq; a[6] = &Tk; a[7] = &Dk; a[8] = &Dv; a[9] = &scale; a[10] = &causalFlag; a[11] = &qTiles;
        a[12] = &kvGroup;
        Launch("attention.cu", s_fwdKernels[variant], Blocks(qTiles, BH), 128, shared, a);
    }

    public void AttentionBackward(float* q, float* k, float* v, float* o, float* lse, float* dO, float* dq, float* dk, float* dv,
        int BH, int Tq, int Tk, int Dk, int Dv, float scale, bool causal, int kvGroup)
    {
        int kvRows = AttentionHeads.KvRows(nameof(AttentionBackward), BH, kvGroup);
        if (BH <= 0) return;
        int variant = AttentionVariant(Dk, Dv);
        int qs = AttnStride(Dk), vs = AttnStride(Dv), causalFlag = causal ? 1 : 0;
        long rows = (long)BH * Math.Max(Tq, 0);
        var dBuf = Scratch(rows * sizeof(float));
        try
        {
            float* D = (float*)dBuf.Pointer;
            if (rows > 0)
            {
                // D_i = dO_i · o_i, a warp per row.
                void** a = stackalloc void*[5];
                a[0] = &o; a[1] = &dO; a[2] = &D; a[3] = &rows; a[4] = &Dv;
                Launch("attention.cu", "nr_attention_bwd_dot_f32", GridFor(rows * 32, 256), 256, 0, a);

                // dQ: Q [32][qs] | dO [32][vs] | K [32][qs] | V [32][vs] | ds strips [4][8][32]
                int qTiles = (Tq + AttnTile - 1) / AttnTile;
                int shared = (2 * AttnTile * qs + 2 * AttnTile * vs + 4 * 8 * AttnTile) * sizeof(float);
                void** b = stackalloc void*[15];
                b[0] = &q; b[1] = &k; b[2] = &v; b[3] = &lse; b[4] = &D; b[5] = &dO; b[6] = &dq;
                b[7] = &Tq; b[8] = &Tk; b[9] = &Dk; b[10] = &Dv; b[11] = &scale; b[12] = &causalFlag; b[13] = &qTiles;
                b[14] = &kvGroup;
                Launch("attention.cu", s_dqKernels[variant], Blocks(qTiles, BH), 128, shared, b);
            }
            if (Tk > 0)
            {
                // dK, dV, a block per (K/V head, 32 keys) looping over the group's query heads:
                // K [32][qs] | V [32][vs] | Q [32][qs] | dO [32][vs] | lse [32] | D [32] | p, ds strips [8][4][32] each
                int kTiles = (Tk + AttnTile - 1) / AttnTile;
                int shared = (2 * AttnTile * qs + 2 * AttnTile * vs + 2 * AttnTile + 2 * 8 * 4 * AttnTile) * sizeof(float);
                void** c = stackalloc void*[16];
                c[0] = &q; c[1] = &k; c[2] = &v; c[3] = &lse; c[4] = &D; c[5] = &dO; c[6] = &dk; c[7] = &dv;
                c[8] = &Tq; c[9] = &Tk; c[10] = &Dk; c[11] = &Dv; c[12] = &scale; c[13] = &causalFlag; c[14] = &kTiles;
                c[15] = &kvGroup;
                Launch("attention.cu", s_dkdvKernels[variant], Blocks(kTiles, kvRows), 256, shared, c);
            }
        }
        finally
        {
            dBuf.Release(); // stream-ordered: the launches above are queued before the block can be reused
        }
    }

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
    /// <remarks>
    /// Precision: with an fp32 cache everything is fp32 (CUDA cores). With a bf16 cache whose row (dLatent +
    /// dRope) and dLatent are multiples of 8 the tensor-core kernel runs: q and the probabilities are rounded
    /// to bf16 as in FlashMLA (every sum fp32), so o is good to about 1e-3 relative against the fp32 math on
    /// the same bf16 cache; other bf16 shapes take the CUDA-core kernel (bf16 converted on load, fp32 math).
    /// Limits: dLatent ≤ 512, dLatent + dRope ≤ 576.
    /// </remarks>
    /// <param name="splitTokens">Tokens per split (rounded up to 32); 0 chooses from the device's size (enough
    /// blocks to fill it, splits of at least 256 tokens). Results do not depend on it beyond rounding.</param>
    public void MlaDecode(float* q, void* cache, bool cacheBf16, int* cacheLengths, float* o, float* lse,
        int batch, int heads, int maxLen, int dLatent, int dRope, float scale, int splitTokens = 0)
    {
        if (batch <= 0 || heads <= 0) return;
        int Dq = dLatent + dRope;
        if (dLatent <= 0 || dRope < 0 || dLatent > MaxMlaLatent || Dq > MaxMlaHeadDim)
            throw new NotSupportedException($"MlaDecode supports dLatent in 1..{MaxMlaLatent} and dLatent + dRope ≤ {MaxMlaHeadDim} (got {dLatent} + {dRope})");
        if (maxLen <= 0) throw new ArgumentOutOfRangeException(nameof(maxLen), "the cache must hold at least one token");

        bool tensorCores = cacheBf16 && Dq % 8 == 0 && dLatent % 8 == 0 && ((long)cache & 15) == 0;
        int headsPerBlock = tensorCores ? 64 : 32;
        int groups = (heads + headsPerBlock - 1) / headsPerBlock;

        if (splitTokens <= 0)
        {
            long blocks = (long)batch * groups;
            int sms = _backend.MultiprocessorCount;
            long wanted = blocks >= sms ? 1 : (sms + blocks - 1) / blocks; // one wave of blocks
            long n = Math.Clamp(wanted, 1, Math.Max(1, (maxLen + 255) / 256)); // splits of ≥ 256 tokens: the partials stay small
            splitTokens = (int)((maxLen + n - 1) / n);
        }
        splitTokens = (int)Math.Min(((long)splitTokens + AttnTile - 1) / AttnTile * AttnTile, ((long)maxLen + AttnTile - 1) / AttnTile * AttnTile);
        int nsplit = (maxLen + splitTokens - 1) / splitTokens;
        long grid = (long)groups * nsplit * batch;
        if (grid > int.MaxValue) throw new NotSupportedException($"MlaDecode grid of {grid} blocks");

        Memory.NativeBuffer? partial = null, partialLse = null;
        float* outO = o, outLse = lse;
        if (nsplit > 1)
        {
            partial = Scratch((long)batch * nsplit * heads * dLatent * sizeof(float));
            partialLse = Scratch((long)batch * nsplit * heads * sizeof(float));
            outO = (float*)partial.Pointer;
            outLse = (float*)partialLse.Pointer;
        }
        try
        {
            void** a = stackalloc void*[13];
            a[0] = &q; a[1] = &cache; a[2] = &cacheLengths; a[3] = &outO; a[4] = &outLse; a[5] = &heads; a[6] = &maxLen;
            a[7] = &dLatent; a[8] = &Dq; a[9] = &scale; a[10] = &splitTokens; a[11] = &nsplit; a[12] = &groups;
            if (tensorCores)
            {
                // q [64][STR] bf16 | two tiles [32][STR] bf16 | P [64][20] words | maxima, sums [2][64] fp32
                int str = ((Dq + 63) & ~63) + 8;
                int shared = (64 + 2 * 32) * str * sizeof(ushort) + 64 * 20 * sizeof(uint) + 4 * 64 * sizeof(float);
                Launch("mla_decode.cu", "nr_mla_decode_bf16_tc", (uint)grid, 256, shared, a);
            }
            else
            {
                // the rows core with 8 warps × 4 heads and the value read from the key tile:
                // Q [32][qs] | K [32][qs] | p strips [8][4][32]
                int qs = AttnStride(Dq);
                int shared = (2 * AttnTile * qs + 8 * 4 * AttnTile) * sizeof(float);
                Launch("mla_decode.cu", cacheBf16 ? "nr_mla_decode_bf16" : "nr_mla_decode_f32", (uint)grid, 256, shared, a);
            }
            if (nsplit > 1)
            {
                void** m = stackalloc void*[8];
                m[0] = &outO; m[1] = &outLse; m[2] = &o; m[3] = &lse; m[4] = &batch; m[5] = &heads; m[6] = &nsplit; m[7] = &dLatent;
                Launch("mla_decode.cu", "nr_mla_decode_merge", GridFor((long)batch * heads * 128, 128), 128, nsplit * sizeof(float), m);
            }
        }
        finally
        {
            partial?.Release();
            partialLse?.Release();
        }
    }
}
