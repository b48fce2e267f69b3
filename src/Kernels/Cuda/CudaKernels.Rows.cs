// Source: RMSNorm (arXiv:1910.07467), online softmax (arXiv:1805.02867), RoPE (arXiv:2104.09864), cross-entropy, the
//         GRPO token loss of TRL.
namespace NativeReasoner.Kernels.Cuda;

// The row-wise family: softmax.cu, norm.cu, rope.cu, loss.cu, fused.cu, grpo.cu (shared helpers in rows.cuh).
// Every row kernel comes in two widths (_v4: 16-byte loads, chosen when all row pointers of the call are 16-byte
// aligned and the row length is a multiple of 4; _v1 otherwise) and two group shapes (warpMode: one warp per
// row for rows ≤ 1024 columns, else one block per row) — see RowPlan.
public sealed unsafe partial class CudaKernels
{
    /// <summary>Rows up to this many columns go one per warp (≤ 32 elements a lane); longer ones one per block.</summary>
    internal const int RowsWarpMaxCols = 1024;

    /// <summary>Threads of a warp-mode block: 8 rows in flight per block.</summary>
    private const int RowsWarpBlock = 256;

    private const int RowsWarpsPerBlock = RowsWarpBlock / 32;

    /// <summary>
    /// The launch shape of a row kernel. Warp mode: 256-thread blocks of 8 row-warps, enough blocks to fill the
    /// device at full occupancy (8 blocks = 2048 threads per SM); block mode: a power of two of 128..1024 threads
    /// (about 16 columns per thread, so a vocab row of 129280 gets 1024 threads looping ~32 quads each), one wave
    /// of blocks. Both grid-stride over rows. maxBlocksPerSm caps the grid (the dw partials of RmsNormBackward).
    /// </summary>
    private void RowPlan(int rows, int cols, out uint grid, out uint block, out int warpMode, int maxBlocksPerSm = 0)
    {
        int sms = Math.Max(1, _backend.MultiprocessorCount);
        if (cols <= RowsWarpMaxCols)
        {
            warpMode = 1;
            block = RowsWarpBlock;
            long needed = (rows + RowsWarpsPerBlock - 1) / RowsWarpsPerBlock;
            long cap = (long)sms * (maxBlocksPerSm > 0 ? maxBlocksPerSm : 2048 / RowsWarpBlock);
            grid = (uint)Math.Max(1, Math.Min(needed, cap));
        }
        else
        {
            warpMode = 0;
            int t = (int)Math.Min(1024, Math.Max(128, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)((cols + 15) / 16))));
            block = (uint)t;
            long cap = (long)sms * (maxBlocksPerSm > 0 ? maxBlocksPerSm : Math.Max(1, 2048 / t));
            grid = (uint)Math.Max(1, Math.Min(rows, cap));
        }
    }

    /// <summary>16-byte aligned (null counts as aligned: an absent optional pointer).</summary>
    private static bool Aligned16(void* a, void* b = null, void* c = null) => (((nuint)a | (nuint)b | (nuint)c) & 15) == 0;

    // ---------------------------------------------------------------- softmax
    public void Softmax(float* x, float* y, int rows, int cols, bool log)
    {
        if (rows <= 0 || cols <= 0) return;
        RowPlan(rows, cols, out uint grid, out uint block, out int warpMode);
        int lg = log ? 1 : 0;
        void** a = stackalloc void*[6];
        a[0] = &x;
        a[1] = &y;
        a[2] = &rows;
        a[3] = &cols;
        a[4] = &lg;
        a[5] = &warpMode;
        bool v4 = cols % 4 == 0 && Aligned16(x, y);
        Launch("softmax.cu", v4 ? "nr_rows_softmax_fwd_v4" : "nr_rows_softmax_fwd_v1", grid, block, 0, a);
    }

    public void SoftmaxBackward(float* y, float* dy, float* dx, int rows, int cols, bool log)
    {
        if (rows <= 0 || cols <= 0) return;
        RowPlan(rows, cols, out uint grid, out uint block, out int warpMode);
        int lg = log ? 1 : 0;
        void** a = stackalloc void*[7];
        a[0] = &y;
        a[1] = &dy;
        a[2] = &dx;
        a[3] = &rows;
        a[4] = &cols;
        a[5] = &lg;
        a[6] = &warpMode;
        bool v4 = cols % 4 == 0 && Aligned16(y, dy, dx);
        Launch("softmax.cu", v4 ? "nr_rows_softmax_bwd_v4" : "nr_rows_softmax_bwd_v1", grid, block, 0, a);
    }

    // ---------------------------------------------------------------- normalisation
    public void RmsNorm(float* x, float* w, float* y, float* rstd, int rows, int cols, float eps)
    {
        if (rows <= 0) return;
        if (cols <= 0)
        {
            Fill(rstd, rows, float.NaN); // the mean of no squares is 0/0, as in the reference
            return;
        }
        RowPlan(rows, cols, out uint grid, out uint block, out int warpMode);
        void** a = stackalloc void*[8];
        a[0] = &x;
        a[1] = &w;
        a[2] = &y;
        a[3] = &rstd;
        a[4] = &rows;
        a[5] = &cols;
        a[6] = &eps;
        a[7] = &warpMode;
        bool v4 = cols % 4 == 0 && Aligned16(x, w, y);
        Launch("norm.cu", v4 ? "nr_rows_rms_fwd_v4" : "nr_rows_rms_fwd_v1", grid, block, 0, a);
    }

    /// <summary>Bytes of dynamic shared memory the dw partial sums may take before they go to global scratch.</summary>
    private const int RmsPartialSharedLimit = 48 * 1024;

    public void RmsNormBackward(float* x, float* w, float* rstd, float* dy, float* dx, float* dw, int rows, int cols)
    {
        if (cols <= 0) return;
        if (rows <= 0)
        {
            Fill(dw, cols, 0f); // an empty sum
            return;
        }
        // Few partial rows: warp mode ≤ 1 block (8 slots) per SM, block mode ≤ 2 blocks per SM.
        RowPlan(rows, cols, out uint grid, out uint block, out int warpMode, maxBlocksPerSm: cols <= RowsWarpMaxCols ? 1 : 2);
        int groups = warpMode == 1 ? RowsWarpsPerBlock : 1;
        int slots = (int)grid * groups;
        long sharedBytes = (long)groups * cols * sizeof(float);
        int useShared = sharedBytes <= RmsPartialSharedLimit ? 1 : 0;
        var partial = Scratch((long)slots * cols * sizeof(float));
        try
        {
            float* p = (float*)partial.Pointer;
            void** a = stackalloc void*[10];
            a[0] = &x;
            a[1] = &w;
            a[2] = &rstd;
            a[3] = &dy;
            a[4] = &dx;
            a[5] = &p;
            a[6] = &rows;
            a[7] = &cols;
            a[8] = &useShared;
            a[9] = &warpMode;
            bool v4 = cols % 4 == 0 && Aligned16(x, w, dy) && Aligned16(dx);
            Launch("norm.cu", v4 ? "nr_rows_rms_bwd_v4" : "nr_rows_rms_bwd_v1", grid, block, useShared == 1 ? (int)sharedBytes : 0, a);

            void** r = stackalloc void*[4];
            r[0] = &p;
            r[1] = &dw;
            r[2] = &slots;
            r[3] = &cols;
            Launch("norm.cu", "nr_rows_rms_dw_reduce", (uint)((cols + 31) / 32), 1, 1, 32, 8, 1, 0, r);
        }
        finally
        {
            partial.Release(); // stream-ordered: reused only by work queued after these launches
        }
    }

    // ---------------------------------------------------------------- rotary embedding
    public void Rope(float* x, float* cos, float* sin, float* y, int outer, int T, int mid, int D, bool inverse)
    {
        if ((D & 1) != 0) throw new ArgumentException("D must be even", nameof(D));
        long pairs = (long)outer * T * mid * (D / 2);
        if (pairs <= 0) return;
        int half = D / 2, inv = inverse ? 1 : 0;
        void** a = stackalloc void*[9];
        a[0] = &x;
        a[1] = &cos;
        a[2] = &sin;
        a[3] = &y;
        a[4] = &pairs;
        a[5] = &T;
        a[6] = &mid;
        a[7] = &half;
        a[8] = &inv;
        bool v2 = (((nuint)x | (nuint)y) & 7) == 0;
        Launch("rope.cu", v2 ? "nr_rows_rope_v2" : "nr_rows_rope_v1", GridFor(pairs), ElementwiseBlock, 0, a);
    }

    // ---------------------------------------------------------------- losses
    public void CrossEntropy(float* logits, long* targets, float* loss, float* lse, int rows, int V, long ignoreIndex)
    {
        if (rows <= 0) return;
        if (V <= 0) throw new ArgumentOutOfRangeException(nameof(V), "cross-entropy needs V ≥ 1");
        RowPlan(rows, V, out uint grid, out uint block, out int warpMode);
        void** a = stackalloc void*[8];
        a[0] = &logits;
        a[1] = &targets;
        a[2] = &loss;
        a[3] = &lse;
        a[4] = &rows;
        a[5] = &V;
        a[6] = &ignoreIndex;
        a[7] = &warpMode;
        bool v4 = V % 4 == 0 && Aligned16(logits);
        Launch("loss.cu", v4 ? "nr_rows_ce_fwd_v4" : "nr_rows_ce_fwd_v1", grid, block, 0, a);
    }

    public void CrossEntropyBackward(float* logits, float* lse, long* targets, float* dloss, float* dlogits,
        int rows, int V, long ignoreIndex)
    {
        if (rows <= 0 || V <= 0) return;
        RowPlan(rows, V, out uint grid, out uint block, out int warpMode);
        void** a = stackalloc void*[9];
        a[0] = &logits;
        a[1] = &lse;
        a[2] = &targets;
        a[3] = &dloss;
        a[4] = &dlogits;
        a[5] = &rows;
        a[6] = &V;
        a[7] = &ignoreIndex;
        a[8] = &warpMode;
        bool v4 = V % 4 == 0 && Aligned16(logits, dlogits);
        Launch("loss.cu", v4 ? "nr_rows_ce_bwd_v4" : "nr_rows_ce_bwd_v1", grid, block, 0, a);
    }

    // ---------------------------------------------------------------- fused
    public void SiluMul(float* gate, float* up, float* y, long n)
    {
        if (n <= 0) return;
        void** a = stackalloc void*[4];
        a[0] = &gate;
        a[1] = &up;
        a[2] = &y;
        a[3] = &n;
        bool v4 = Aligned16(gate, up, y);
        Launch("fused.cu", v4 ? "nr_rows_silu_mul_v4" : "nr_rows_silu_mul_v1", GridFor(v4 ? (n + 3) / 4 : n), ElementwiseBlock, 0, a);
    }

    public void SiluMulBackward(float* gate, float* up, float* dy, float* dgate, float* dup, long n)
    {
        if (n <= 0) return;
        void** a = stackalloc void*[6];
        a[0] = &gate;
        a[1] = &up;
        a[2] = &dy;
        a[3] = &dgate;
        a[4] = &dup;
        a[5] = &n;
        bool v4 = Aligned16(gate, up, dy) && Aligned16(dgate, dup);
        Launch("fused.cu", v4 ? "nr_rows_silu_mul_bwd_v4" : "nr_rows_silu_mul_bwd_v1", GridFor(v4 ? (n + 3) / 4 : n), ElementwiseBlock, 0, a);
    }

    public void LogSoftmaxGather(float* logits, long* ids, float* logp, float* lse, int rows, int V, float invTemperature)
    {
        if (rows <= 0) return;
        if (V <= 0) throw new ArgumentOutOfRangeException(nameof(V), "log_softmax_gather needs V ≥ 1");
        RowPlan(rows, V, out uint grid, out uint block, out int warpMode);
        void** a = stackalloc void*[8];
        a[0] = &logits;
        a[1] = &ids;
        a[2] = &logp;
        a[3] = &lse;
        a[4] = &rows;
        a[5] = &V;
        a[6] = &invTemperature;
        a[7] = &warpMode;
        bool v4 = V % 4 == 0 && Aligned16(logits);
        Launch("fused.cu", v4 ? "nr_rows_lsg_fwd_v4" : "nr_rows_lsg_fwd_v1", grid, block, 0, a);
    }

    public void LogSoftmaxGatherBackward(float* logits, long* ids, float* lse, float* dlogp, float* dlogits,
        int rows, int V, float invTemperature)
    {
        if (rows <= 0 || V <= 0) return;
        RowPlan(rows, V, out uint grid, out uint block, out int warpMode);
        void** a = stackalloc void*[9];
        a[0] = &logits;
        a[1] = &ids;
        a[2] = &lse;
        a[3] = &dlogp;
        a[4] = &dlogits;
        a[5] = &rows;
        a[6] = &V;
        a[7] = &invTemperature;
        a[8] = &warpMode;
        bool v4 = V % 4 == 0 && Aligned16(logits, dlogits);
        Launch("fused.cu", v4 ? "nr_rows_lsg_bwd_v4" : "nr_rows_lsg_bwd_v1", grid, block, 0, a);
    }

    // ---------------------------------------------------------------- GRPO (CUDA-specific)
    /// <summary>
    /// GRPO's per-token loss and its logits gradient in one kernel, straight from the policy logits (no [rows]
    /// log-prob round trip, no [rows, V] intermediate). Rows are tokens (flattened [B, T]); per row r:
    /// <code>
    /// z      = logits[r] · InvTemperature;   logp = z[ids[r]] − logsumexp(z)
    /// ρ      = exp(logp − old[r])                                  (old = null: old = logp, so ρ ≡ 1)
    /// l      = −min(ρ·A, clamp(ρ, 1 − EpsilonLow, 1 + EpsilonHigh)·A),  A = advantages[r / TokensPerSequence]
    /// l     += Beta · (exp(ref[r] − logp) − (ref[r] − logp) − 1)      when Beta ≠ 0 (the k3 KL estimator)
    /// loss[r]    = mask[r] · l                                          (exactly 0 where mask[r] = 0)
    /// dlogits[r] = weight[r] · mask[r] · ∂l/∂logp · InvTemperature · (onehot(ids[r]) − softmax(z))
    /// </code>
    /// exactly the per-token objective of <c>NativeReasoner.RL.GrpoLoss.Compute</c> (same float operation order;
    /// ties of the min take the unclipped term; torch.clamp's inclusive range passes the gradient). The
    /// aggregation stays with the caller: <paramref name="weight"/> is ∂(total loss)/∂loss[r] — e.g. for
    /// LossType.Grpo 1 / (max(1, Σ_t mask) · B · gradient-accumulation steps) of the row's sequence, for Dapo
    /// 1 / num_items_in_batch — and the total is Σ_r weight[r] · loss[r].
    /// Deliberate difference: rows with mask 0 contribute exactly 0 loss and a zero gradient row even when their
    /// logits are not finite (the unfused graph's NaN · 0 would be NaN); their logits are read only when
    /// <paramref name="logp"/> is wanted.
    /// </summary>
    /// <param name="logits">[rows, V] raw policy logits (before the temperature).</param>
    /// <param name="ids">[rows] sampled token ids, each in [0, V) (not checked).</param>
    /// <param name="oldLogp">[rows] sampling-policy log-probs, or null (μ = 1: the current logp, detached).</param>
    /// <param name="refLogp">[rows] reference-policy log-probs; read only when Beta ≠ 0.</param>
    /// <param name="advantages">[rows / TokensPerSequence] advantage per sequence, broadcast over its tokens.</param>
    /// <param name="mask">[rows] completion mask, or null for all ones.</param>
    /// <param name="weight">[rows] upstream weight per token, or null for all ones.</param>
    /// <param name="loss">Out [rows]: mask · per-token loss.</param>
    /// <param name="logp">Out [rows] policy log-probs (for the clip and KL metrics, or as the next step's old), or null.</param>
    /// <param name="dlogits">Out [rows, V] (overwritten), or null for the loss only.</param>
    public void GrpoTokenLoss(float* logits, long* ids, float* oldLogp, float* refLogp, float* advantages, float* mask, float* weight,
        float* loss, float* logp, float* dlogits, int rows, int V, GrpoTokenLossOptions options)
    {
        if (rows <= 0) return;
        if (V <= 0) throw new ArgumentOutOfRangeException(nameof(V), "grpo_token_loss needs V ≥ 1");
        if (!(options.InvTemperature > 0f) || float.IsInfinity(options.InvTemperature))
            throw new ArgumentOutOfRangeException(nameof(options), $"grpo_token_loss: InvTemperature must be positive and finite, got {options.InvTemperature}");
        if (options.TokensPerSequence < 1)
            throw new ArgumentOutOfRangeException(nameof(options), "grpo_token_loss: TokensPerSequence must be ≥ 1");
        if (options.Beta != 0f && refLogp == null)
            throw new ArgumentException("grpo_token_loss: Beta ≠ 0 needs the reference log-probs", nameof(refLogp));
        if (advantages == null) throw new ArgumentNullException(nameof(advantages));
        RowPlan(rows, V, out uint grid, out uint block, out int warpMode);
        var p = options;
        void** a = stackalloc void*[14];
        a[0] = &logits;
        a[1] = &ids;
        a[2] = &oldLogp;
        a[3] = &refLogp;
        a[4] = &advantages;
        a[5] = &mask;
        a[6] = &weight;
        a[7] = &loss;
        a[8] = &logp;
        a[9] = &dlogits;
        a[10] = &rows;
        a[11] = &V;
        a[12] = &p;
        a[13] = &warpMode;
        bool v4 = V % 4 == 0 && Aligned16(logits, dlogits);
        Launch("grpo.cu", v4 ? "nr_rows_grpo_v4" : "nr_rows_grpo_v1", grid, block, 0, a);
    }
}
