// Source: FlashAttention-2 (arXiv:2307.08691): tiled attention with an online softmax and a saved log-sum-exp; grouped
//         K/V heads as GQA (arXiv:2305.13245).
namespace NativeReasoner.Kernels.Cuda;

// Flash attention on bf16 tensor cores: kernels/cuda/attention_bf16.cu (design and shared-memory budget there).
public sealed unsafe partial class CudaKernels
{
    private const string AttentionBf16File = "attention_bf16.cu";

    /// <summary>
    /// Flash attention on bf16 tensor cores (mma.sync, fp32 accumulation and softmax): the layouts and the
    /// causal rule of <see cref="IKernels.AttentionForward"/>, with q, k, v and o as bf16 bits; lse fp32.
    /// Dk and Dv: multiples of 16 up to 256 (they may differ, e.g. MLA's 192/128); q, k, v (and dO, dq of
    /// the backward) 16-byte aligned. P is rounded to bf16 before P·V (as every tensor-core flash attention does).
    /// Grouped K/V heads as in <see cref="IKernels.AttentionForward"/>: k, v hold BH / kvGroup heads, query head bh
    /// reads K/V head bh / kvGroup.
    /// </summary>
    public void AttentionForwardBf16(ushort* q, ushort* k, ushort* v, ushort* o, float* lse,
        int BH, int Tq, int Tk, int Dk, int Dv, float scale, bool causal, int kvGroup)
    {
        CheckAttentionBf16(nameof(AttentionForwardBf16), BH, Tq, Tk, Dk, Dv, q, k, v, o, lse);
        AttentionHeads.KvRows(nameof(AttentionForwardBf16), BH, kvGroup);
        if (BH == 0 || Tq == 0) return;
        var (name, dkMax, dvMax) = AttentionBf16Variant(Dk, Dv);
        long blocks = (long)((Tq + 63) / 64) * BH;
        if (blocks > int.MaxValue) throw new ArgumentException($"AttentionForwardBf16: {blocks} blocks (BH {BH}, Tq {Tq}) exceed the grid limit");
        // sQ, sK: [64][dkMax + 8], sV: [64][dvMax + 8] bf16.
        int shared = 64 * (2 * (dkMax + 8) + dvMax + 8) * 2;
        float scaleLog2 = scale * 1.4426950408889634f;
        int c = causal ? 1 : 0;
        void** a = stackalloc void*[13];
        a[0] = &q;
        a[1] = &k;
        a[2] = &v;
        a[3] = &o;
        a[4] = &lse;
        a[5] = &BH;
        a[6] = &Tq;
        a[7] = &Tk;
        a[8] = &Dk;
        a[9] = &Dv;
        a[10] = &scaleLog2;
        a[11] = &c;
        a[12] = &kvGroup;
        Launch(AttentionBf16File, "nr_attnbf16_fwd_" + name, (uint)blocks, 128, shared, a);
    }

    /// <summary>
    /// Backward of <see cref="AttentionForwardBf16"/>: dq, dk, dv (bf16, overwritten) from dO (bf16), o and lse.
    /// FlashAttention-2: Δ = rowsum(dO ⊙ o), then one block per key tile (dk, dv in registers, P recomputed from
    /// lse), dq accumulated in fp32 with atomics (so its rounding order is not reproducible bit for bit). With
    /// grouped K/V heads a key-tile block loops over the kvGroup query heads of its K/V head, so dk and dv (of
    /// BH / kvGroup heads) sum the group in a fixed order.
    /// </summary>
    public void AttentionBackwardBf16(ushort* q, ushort* k, ushort* v, ushort* o, float* lse, ushort* dO,
        ushort* dq, ushort* dk, ushort* dv, int BH, int Tq, int Tk, int Dk, int Dv, float scale, bool causal,
        int kvGroup)
    {
        CheckAttentionBf16(nameof(AttentionBackwardBf16), BH, Tq, Tk, Dk, Dv, q, k, v, o, lse);
        int kvRows = AttentionHeads.KvRows(nameof(AttentionBackwardBf16), BH, kvGroup);
        CheckAligned(nameof(AttentionBackwardBf16), dO, nameof(dO), 16);
        CheckAligned(nameof(AttentionBackwardBf16), dq, nameof(dq), 16);
        CheckAligned(nameof(AttentionBackwardBf16), dk, nameof(dk), 4);
        CheckAligned(nameof(AttentionBackwardBf16), dv, nameof(dv), 4);
        if (BH == 0 || (Tq == 0 && Tk == 0)) return;
        var (name, dkMax, dvMax) = AttentionBf16Variant(Dk, Dv);
        int tqPad = (Tq + 63) / 64 * 64;
        long keyBlocks = (long)((Tk + 63) / 64) * kvRows;
        if (keyBlocks > int.MaxValue)
            throw new ArgumentException(
                $"AttentionBackwardBf16: {keyBlocks} blocks (K/V heads {kvRows}, Tk {Tk}) exceed the grid limit");
        long dqElements = (long)BH * Tq * Dk;

        // Scratch: Δ and lse·log2 e per (padded) query row, the fp32 dq accumulator.
        var delta = Scratch((long)BH * tqPad * sizeof(float));
        var lse2 = Scratch((long)BH * tqPad * sizeof(float));
        var dqAcc = Scratch(dqElements * sizeof(float));
        try
        {
            float* pDelta = (float*)delta.Pointer, pLse2 = (float*)lse2.Pointer, pAcc = (float*)dqAcc.Pointer;
            long prepRows = (long)BH * tqPad;
            if (prepRows > 0)
            {
                void** p = stackalloc void*[11];
                p[0] = &o;
                p[1] = &dO;
                p[2] = &lse;
                p[3] = &pDelta;
                p[4] = &pLse2;
                p[5] = &pAcc;
                p[6] = &BH;
                p[7] = &Tq;
                p[8] = &tqPad;
                p[9] = &Dk;
                p[10] = &Dv;
                // One warp a row, 8 rows a block of 256.
                Launch(AttentionBf16File, "nr_attnbf16_bwd_prep", GridFor(prepRows * 32), ElementwiseBlock, 0, p);
            }
            if (keyBlocks > 0)
            {
                // sK, sQ[2]: [64][dkMax + 8]; sV, sdO: [64][dvMax + 8]; sdS: [64][72] bf16; lse2, Δ: [64] floats.
                int shared = 64 * (3 * (dkMax + 8) + 2 * (dvMax + 8)) * 2 + 64 * 72 * 2 + 2 * 64 * sizeof(float);
                float scaleLog2 = scale * 1.4426950408889634f;
                int c = causal ? 1 : 0;
                void** a = stackalloc void*[19];
                a[0] = &q;
                a[1] = &k;
                a[2] = &v;
                a[3] = &dO;
                a[4] = &pLse2;
                a[5] = &pDelta;
                a[6] = &pAcc;
                a[7] = &dk;
                a[8] = &dv;
                a[9] = &BH;
                a[10] = &Tq;
                a[11] = &Tk;
                a[12] = &tqPad;
                a[13] = &Dk;
                a[14] = &Dv;
                a[15] = &scaleLog2;
                a[16] = &scale;
                a[17] = &c;
                a[18] = &kvGroup;
                Launch(AttentionBf16File, "nr_attnbf16_bwd_" + name, (uint)keyBlocks, 128, shared, a);
            }
            if (dqElements > 0)
            {
                void** d = stackalloc void*[4];
                d[0] = &pAcc;
                d[1] = &dq;
                d[2] = &dqElements;
                d[3] = &scale;
                Launch(AttentionBf16File, "nr_attnbf16_dq_convert", GridFor(dqElements / 8), ElementwiseBlock, 0, d);
            }
        }
        finally
        {
            // Stream-ordered allocator: releasing after the launches are queued is safe.
            dqAcc.Release();
            lse2.Release();
            delta.Release();
        }
    }

    /// <summary>The compiled kernel variant covering Dk, Dv: its name suffix and its (Dk, Dv) maxima.</summary>
    private static (string Name, int DkMax, int DvMax) AttentionBf16Variant(int Dk, int Dv) =>
        Dk <= 64 && Dv <= 64 ? ("d64", 64, 64)
        : Dk <= 128 && Dv <= 128 ? ("d128", 128, 128)
        : Dk <= 192 && Dv <= 128 ? ("d192x128", 192, 128)
        : ("d256", 256, 256);

    private static void CheckAttentionBf16(string op, int BH, int Tq, int Tk, int Dk, int Dv,
        ushort* q, ushort* k, ushort* v, ushort* o, float* lse)
    {
        if (BH < 0 || Tq < 0 || Tk < 0)
            throw new ArgumentException($"{op}: negative size (BH {BH}, Tq {Tq}, Tk {Tk})");
        if (Dk < 16 || Dk > 256 || Dk % 16 != 0 || Dv < 16 || Dv > 256 || Dv % 16 != 0)
            throw new ArgumentException($"{op}: head dims must be multiples of 16 from 16 to 256 (the mma k-step); got Dk {Dk}, Dv {Dv}");
        CheckAligned(op, q, nameof(q), 16);
        CheckAligned(op, k, nameof(k), 16);
        CheckAligned(op, v, nameof(v), 16);
        CheckAligned(op, o, nameof(o), 4);
        CheckAligned(op, lse, nameof(lse), 4);
    }

    // q, k, v, dO are read and dq written as 16-byte chunks (Dk, Dv multiples of 16 keep every row aligned if the
    // base is); o, dk, dv move as bf16 pairs.
    private static void CheckAligned(string op, void* p, string what, int bytes)
    {
        if (((nint)p & (bytes - 1)) != 0)
            throw new ArgumentException($"{op}: {what} must be {bytes}-byte aligned (got 0x{(nint)p:x})");
    }
}
