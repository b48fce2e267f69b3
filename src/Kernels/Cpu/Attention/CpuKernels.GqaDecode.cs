using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using NativeReasoner.Kernels.Cpu.Attention;
using NativeReasoner.Kernels.Cpu.Gemm;

namespace NativeReasoner.Kernels.Cpu;

/// <summary>
/// Grouped-query decode attention (GQA, arXiv:2305.13245) against per-sequence K/V caches. The query heads that
/// share a K/V head are consecutive rows of q, so one item = (sequence, K/V head) treats its group of queries as a
/// query tile of the flash forward (<see cref="ForwardItems"/>): each cache tile is loaded and transposed once for
/// the whole group and the scores are a [group × keys] tile product, not one dot product per head. No mask (the
/// new token is already in the cache); keys past the sequence's length are never read.
/// </summary>
public sealed unsafe partial class CpuKernels : IGqaDecodeAttention
{
    private struct DecodeJob
    {
        public float* Q, K, V, O, Lse;
        public int* Lengths;
        public int Hkv, Group, Capacity, Dk, Dv;
        public float Scale;
    }

    public void GqaDecodeAttention(float* q, float* kCache, float* vCache, int* lengths, float* o, float* lse,
        int batch, int Hq, int Hkv, int capacity, int Dk, int Dv, float scale)
    {
        IGqaDecodeAttention.Validate(nameof(GqaDecodeAttention), lengths, batch, Hq, Hkv, capacity, Dk, Dv);
        if (batch == 0) return;
        var job = new DecodeJob
        {
            Q = q, K = kCache, V = vCache, O = o, Lse = lse, Lengths = lengths,
            Hkv = Hkv, Group = Hq / Hkv, Capacity = capacity, Dk = Dk, Dv = Dv, Scale = scale,
        };
        long items = (long)batch * Hkv, work = 0;
        for (int b = 0; b < batch; b++) work += (long)lengths[b] * Hq * (Dk + Dv);
        CpuParallel.For(items, work < 1 << 18 ? items : 1, &DecodeItems, &job);
    }

    /// <summary>Items = (sequence, K/V head): the group's o and lse rows, streaming over the cache tiles.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DecodeItems(void* state, long start, long end)
    {
        ref DecodeJob j = ref *(DecodeJob*)state;
        int Dk = j.Dk, Dv = j.Dv;
        // Scratch: Kᵀ tile [Dk][Bk] | S/P tile [Bq][Bk] | O accumulator [Bq][Dv] | running max, sum, rescale [Bq]
        // | scale·Q rows [Bq][Dk].
        float* scratch = GemmScratch.Rent((long)Dk * Bk + Bq * Bk + (long)Bq * Dv + 3 * Bq + (long)Bq * Dk);
        float* kt = scratch, s = kt + (long)Dk * Bk, acc = s + Bq * Bk, mx = acc + (long)Bq * Dv, sum = mx + Bq;
        float* corr = sum + Bq, qs = corr + Bq;
        try
        {
            for (long item = start; item < end; item++)
            {
                int len = j.Lengths[item / j.Hkv];
                float* kb = j.K + item * j.Capacity * Dk, vb = j.V + item * j.Capacity * Dv;
                // The group's query rows: [item·Group, (item + 1)·Group) of the [batch·Hq] rows.
                for (int r0 = 0; r0 < j.Group; r0 += Bq)
                {
                    int nq = Math.Min(Bq, j.Group - r0);
                    long row0 = item * j.Group + r0;
                    TensorPrimitives.Multiply(new ReadOnlySpan<float>(j.Q + row0 * Dk, nq * Dk), j.Scale,
                        new Span<float>(qs, nq * Dk));
                    new Span<float>(acc, nq * Dv).Clear();
                    new Span<float>(mx, nq).Fill(float.NegativeInfinity);
                    new Span<float>(sum, nq).Clear();
                    for (int j0 = 0; j0 < len; j0 += Bk)
                    {
                        int nk = Math.Min(Bk, len - j0);
                        // S[nq × nk] = (scale·Q_group) · K_tileᵀ
                        TileMath.Transpose(kb + (long)j0 * Dk, Dk, nk, Dk, kt, Bk);
                        TileMath.MatMul(nq, nk, Dk, qs, Dk, 1, kt, Bk, s, Bk, accumulate: false);
                        for (int r = 0; r < nq; r++)
                        {
                            float* row = s + r * Bk;
                            float mNew = Math.Max(mx[r], TileMath.Max(row, nk));
                            corr[r] = MathF.Exp(mx[r] - mNew); // 0 on the first tile (running max −∞)
                            mx[r] = mNew;
                            TileMath.ScaleShiftMask(row, nk, nk, 1f, mNew);
                        }
                        var tile = new Span<float>(s, (nq - 1) * Bk + nk);
                        TensorPrimitives.Exp(tile, tile);
                        for (int r = 0; r < nq; r++)
                        {
                            sum[r] = sum[r] * corr[r] + TileMath.Sum(s + r * Bk, nk);
                            if (corr[r] != 1f)
                            {
                                var accRow = new Span<float>(acc + r * Dv, Dv);
                                TensorPrimitives.Multiply(accRow, corr[r], accRow);
                            }
                        }
                        // O_acc[nq × Dv] += P[nq × nk] · V_tile[nk × Dv]
                        TileMath.MatMul(nq, Dv, nk, s, Bk, 1, vb + (long)j0 * Dv, Dv, acc, Dv, accumulate: true);
                    }
                    for (int r = 0; r < nq; r++)
                    {
                        var oRow = new Span<float>(j.O + (row0 + r) * Dv, Dv);
                        if (sum[r] > 0f)
                        {
                            TensorPrimitives.Multiply(new ReadOnlySpan<float>(acc + r * Dv, Dv), 1f / sum[r], oRow);
                            j.Lse[row0 + r] = mx[r] + MathF.Log(sum[r]);
                        }
                        else
                        {
                            // An empty sequence: no key to attend.
                            oRow.Clear();
                            j.Lse[row0 + r] = float.NegativeInfinity;
                        }
                    }
                }
            }
        }
        finally
        {
            GemmScratch.Return(scratch);
        }
    }
}
