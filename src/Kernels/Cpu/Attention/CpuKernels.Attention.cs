// Source: FlashAttention-2 (arXiv:2307.08691): tiled attention with an online softmax and a saved log-sum-exp; grouped
//         K/V heads as GQA (arXiv:2305.13245).
using System.Runtime.CompilerServices;
using System.Numerics.Tensors;
using NativeReasoner.Kernels.Cpu.Attention;
using NativeReasoner.Kernels.Cpu.Gemm;

namespace NativeReasoner.Kernels.Cpu;

/// <summary>
/// Flash-style attention: queries in tiles of <see cref="Bq"/>, keys in tiles of <see cref="Bk"/>, online
/// softmax (running max and sum per query), so memory is per-tile scratch only, never Tq × Tk.
/// Causal masking is bottom-right aligned: query i sees keys 0 .. Tk − Tq + i. A query that sees no key
/// (causal with Tq &gt; Tk) gets o = 0, lse = −∞ and zero gradients.
/// Grouped K/V heads (GQA): query head bh reads K/V head bh / Group in place (nothing is repeated); the
/// backward gives each item a whole K/V head (or key tile of one) and loops over the Group query heads that
/// read it, so dk/dv sum over the group in a fixed order with no shared writes.
/// </summary>
public sealed unsafe partial class CpuKernels
{
    private const int Bq = 64;
    private const int Bk = 64;

    private struct AttnJob
    {
        public float* Q, K, V, O, Lse, DO, DQ, DK, DV, D;
        public int Tq, Tk, Dk, Dv, QTiles, KTiles, Group;
        public float Scale;
        public bool Causal;
    }

    /// <summary>Last key query i sees (may be &lt; 0: none).</summary>
    private static int LastKey(in AttnJob j, int i) => j.Causal ? Math.Min(j.Tk - 1, j.Tk - j.Tq + i) : j.Tk - 1;

    public void AttentionForward(float* q, float* k, float* v, float* o, float* lse,
        int BH, int Tq, int Tk, int Dk, int Dv, float scale, bool causal, int kvGroup)
    {
        AttentionHeads.KvRows(nameof(AttentionForward), BH, kvGroup);
        if (BH <= 0 || Tq <= 0) return;
        var job = new AttnJob
        {
            Q = q, K = k, V = v, O = o, Lse = lse, Tq = Tq, Tk = Tk, Dk = Dk, Dv = Dv, Scale = scale, Causal = causal,
            QTiles = (Tq + Bq - 1) / Bq, Group = kvGroup,
        };
        long items = (long)BH * job.QTiles;
        long work = (long)BH * Tq * Tk * (Dk + Dv);
        CpuParallel.For(items, work < 1 << 18 ? items : 1, &ForwardItems, &job);
    }

    /// <summary>Items = (bh, query tile): o and lse rows of that tile, by streaming over the key tiles.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ForwardItems(void* state, long start, long end)
    {
        ref AttnJob j = ref *(AttnJob*)state;
        int Dk = j.Dk, Dv = j.Dv;
        // Scratch: Kᵀ tile [Dk][Bk] | S/P tile [Bq][Bk] | O accumulator [Bq][Dv] | running max, sum, rescale [Bq]
        // | scale·Q tile [Bq][Dk] (scaling Q once per item spares a read-modify-write pass over every S tile).
        float* scratch = GemmScratch.Rent((long)Dk * Bk + Bq * Bk + (long)Bq * Dv + 3 * Bq + (long)Bq * Dk);
        float* kt = scratch, s = kt + (long)Dk * Bk, acc = s + Bq * Bk, mx = acc + (long)Bq * Dv, sum = mx + Bq, corr = sum + Bq;
        float* qs = corr + Bq;
        try
        {
            for (long item = start; item < end; item++)
            {
                long bh = item / j.QTiles;
                int i0 = (int)(item % j.QTiles) * Bq, nq = Math.Min(Bq, j.Tq - i0);
                float* qb = qs;
                TensorPrimitives.Multiply(new ReadOnlySpan<float>(j.Q + (bh * j.Tq + i0) * Dk, nq * Dk), j.Scale, new Span<float>(qs, nq * Dk));
                long kvh = bh / j.Group;
                float* kb = j.K + kvh * j.Tk * Dk, vb = j.V + kvh * j.Tk * Dv;
                new Span<float>(acc, nq * Dv).Clear();
                new Span<float>(mx, nq).Fill(float.NegativeInfinity);
                new Span<float>(sum, nq).Clear();
                int keyEnd = LastKey(j, i0 + nq - 1) + 1; // keys past this are masked for the whole tile
                for (int j0 = 0; j0 < keyEnd; j0 += Bk)
                {
                    int nk = Math.Min(Bk, keyEnd - j0);
                    // S[nq × nk] = Q_tile · K_tileᵀ
                    TileMath.Transpose(kb + (long)j0 * Dk, Dk, nk, Dk, kt, Bk);
                    TileMath.MatMul(nq, nk, Dk, qb, Dk, 1, kt, Bk, s, Bk, accumulate: false);
                    // Online softmax, pass 1 per row: new running max, shift and mask (masked → −∞). S is already scaled.
                    for (int r = 0; r < nq; r++)
                    {
                        float* row = s + r * Bk;
                        int visible = Math.Min(nk, LastKey(j, i0 + r) - j0 + 1);
                        if (visible <= 0) { corr[r] = 1f; TileMath.ScaleShiftMask(row, nk, 0, 1f, 0f); continue; }
                        float mNew = Math.Max(mx[r], TileMath.Max(row, visible));
                        // Rescale what was accumulated under the old max (exp(−∞) = 0 on the first tile).
                        corr[r] = MathF.Exp(mx[r] - mNew);
                        mx[r] = mNew;
                        TileMath.ScaleShiftMask(row, nk, visible, 1f, mNew);
                    }
                    // One vectorised exp over the whole tile (cheaper than one call per short row).
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
                float* ob = j.O + (bh * j.Tq + i0) * Dv, lb = j.Lse + bh * j.Tq + i0;
                for (int r = 0; r < nq; r++)
                {
                    var oRow = new Span<float>(ob + r * Dv, Dv);
                    if (sum[r] > 0f)
                    {
                        TensorPrimitives.Multiply(new ReadOnlySpan<float>(acc + r * Dv, Dv), 1f / sum[r], oRow);
                        lb[r] = mx[r] + MathF.Log(sum[r]);
                    }
                    else
                    {
                        oRow.Clear();
                        lb[r] = float.NegativeInfinity;
                    }
                }
            }
        }
        finally
        {
            GemmScratch.Return(scratch);
        }
    }

    public void AttentionBackward(float* q, float* k, float* v, float* o, float* lse, float* dO,
        float* dq, float* dk, float* dv, int BH, int Tq, int Tk, int Dk, int Dv, float scale, bool causal,
        int kvGroup)
    {
        int kvRows = AttentionHeads.KvRows(nameof(AttentionBackward), BH, kvGroup);
        if (BH <= 0) return;
        if (Tq <= 0 || Tk <= 0)
        {
            // No attention pairs: every gradient is zero.
            new Span<float>(dq, (int)((long)BH * Tq * Dk)).Clear();
            new Span<float>(dk, (int)((long)kvRows * Tk * Dk)).Clear();
            new Span<float>(dv, (int)((long)kvRows * Tk * Dv)).Clear();
            return;
        }
        // D[bh, i] = dO_i · o_i (= Σ_j P_ij dP_ij), written by the dq pass and read by the dk/dv pass.
        float* d = GemmScratch.Rent((long)BH * Tq);
        try
        {
            var job = new AttnJob
            {
                Q = q, K = k, V = v, O = o, Lse = lse, DO = dO, DQ = dq, DK = dk, DV = dv, D = d,
                Tq = Tq, Tk = Tk, Dk = Dk, Dv = Dv, Scale = scale, Causal = causal,
                QTiles = (Tq + Bq - 1) / Bq, KTiles = (Tk + Bk - 1) / Bk, Group = kvGroup,
            };
            long work = (long)BH * Tq * Tk * (Dk + Dv);
            if (kvRows >= 2 * CpuParallel.Threads || CpuParallel.Threads == 1 || CpuParallel.InsideParallelBody)
            {
                // Enough K/V heads to keep every thread busy: one pass per K/V head computes P and dS once and
                // feeds dq, dk and dv from them (5 tile products instead of the 7 of the split passes below).
                CpuParallel.For(kvRows, work < 1 << 17 ? kvRows : 1, &BackwardHeadItems, &job);
                return;
            }
            long qItems = (long)BH * job.QTiles, kItems = (long)kvRows * job.KTiles;
            CpuParallel.For(qItems, work < 1 << 17 ? qItems : 1, &BackwardDqItems, &job);
            CpuParallel.For(kItems, work < 1 << 17 ? kItems : 1, &BackwardDkDvItems, &job);
        }
        finally
        {
            GemmScratch.Return(d);
        }
    }

    /// <summary>
    /// P[nq × nk] = exp(scale · Q_blk·K_tileᵀ − lse) with the causal mask (masked entries 0), into p (row stride Bk).
    /// kt is the transposed key tile [Dk][Bk].
    /// </summary>
    private static void Probabilities(in AttnJob j, float* qb, float* lseRows, int i0, int nq, float* kt, int j0, int nk, float* p)
    {
        TileMath.MatMul(nq, nk, j.Dk, qb, j.Dk, 1, kt, Bk, p, Bk, accumulate: false);
        for (int r = 0; r < nq; r++)
        {
            int visible = Math.Min(nk, LastKey(j, i0 + r) - j0 + 1);
            // Masked (or a query that sees nothing) → −∞ → P = 0; never subtracts an infinite lse.
            TileMath.ScaleShiftMask(p + r * Bk, nk, Math.Max(0, visible), j.Scale, visible > 0 ? lseRows[r] : 0f);
        }
        var tile = new Span<float>(p, (nq - 1) * Bk + nk);
        TensorPrimitives.Exp(tile, tile);
    }

    /// <summary>dS = P ⊙ (dP − D_row), in place over dP (row stride Bk).</summary>
    private static void ScoreGrad(float* p, float* dp, float* dRows, int nq, int nk)
    {
        for (int r = 0; r < nq; r++) TileMath.SoftmaxGradRow(p + r * Bk, dp + r * Bk, nk, dRows[r]);
    }

    /// <summary>Items = (bh, query tile): D rows, then dq_i = scale · Σ_j dS_ij k_j over the visible key tiles.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardDqItems(void* state, long start, long end)
    {
        ref AttnJob j = ref *(AttnJob*)state;
        int Dk = j.Dk, Dv = j.Dv;
        // Scratch: Kᵀ [Dk][Bk] | Vᵀ [Dv][Bk] | P [Bq][Bk] | dP/dS [Bq][Bk] | dq accumulator [Bq][Dk].
        float* scratch = GemmScratch.Rent((long)(Dk + Dv) * Bk + 2 * Bq * Bk + (long)Bq * Dk);
        float* kt = scratch, vt = kt + (long)Dk * Bk, p = vt + (long)Dv * Bk, dp = p + Bq * Bk, acc = dp + Bq * Bk;
        try
        {
            for (long item = start; item < end; item++)
            {
                long bh = item / j.QTiles;
                int i0 = (int)(item % j.QTiles) * Bq, nq = Math.Min(Bq, j.Tq - i0);
                long row0 = bh * j.Tq + i0;
                float* qb = j.Q + row0 * Dk, dOb = j.DO + row0 * Dv, ob = j.O + row0 * Dv;
                float* lb = j.Lse + row0, db = j.D + row0;
                long kvh = bh / j.Group;
                float* kb = j.K + kvh * j.Tk * Dk, vb = j.V + kvh * j.Tk * Dv;
                for (int r = 0; r < nq; r++)
                    db[r] = TensorPrimitives.Dot(new ReadOnlySpan<float>(dOb + r * Dv, Dv), new ReadOnlySpan<float>(ob + r * Dv, Dv));
                new Span<float>(acc, nq * Dk).Clear();
                int keyEnd = LastKey(j, i0 + nq - 1) + 1;
                for (int j0 = 0; j0 < keyEnd; j0 += Bk)
                {
                    int nk = Math.Min(Bk, keyEnd - j0);
                    TileMath.Transpose(kb + (long)j0 * Dk, Dk, nk, Dk, kt, Bk);
                    TileMath.Transpose(vb + (long)j0 * Dv, Dv, nk, Dv, vt, Bk);
                    Probabilities(j, qb, lb, i0, nq, kt, j0, nk, p);
                    // dP[nq × nk] = dO_blk · V_tileᵀ
                    TileMath.MatMul(nq, nk, Dv, dOb, Dv, 1, vt, Bk, dp, Bk, accumulate: false);
                    ScoreGrad(p, dp, db, nq, nk);
                    // dq_acc[nq × Dk] += dS[nq × nk] · K_tile[nk × Dk]
                    TileMath.MatMul(nq, Dk, nk, dp, Bk, 1, kb + (long)j0 * Dk, Dk, acc, Dk, accumulate: true);
                }
                TensorPrimitives.Multiply(new ReadOnlySpan<float>(acc, nq * Dk), j.Scale, new Span<float>(j.DQ + row0 * Dk, nq * Dk));
            }
        }
        finally
        {
            GemmScratch.Return(scratch);
        }
    }

    /// <summary>
    /// Items = whole K/V heads. Per key tile: P and dS for every query block (of every query head of the group)
    /// that sees it, then dv and dk for the tile and dq for the query block (dq rows are accumulated across key
    /// tiles; the item owns the group's query heads, so no other item writes there).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardHeadItems(void* state, long start, long end)
    {
        ref AttnJob j = ref *(AttnJob*)state;
        int Dk = j.Dk, Dv = j.Dv, group = j.Group;
        // Scratch: Kᵀ [Dk][Bk] | Vᵀ [Dv][Bk] | P [Bq][Bk] | dP/dS [Bq][Bk] | dk acc [Bk][Dk] | dv acc [Bk][Dv].
        float* scratch = GemmScratch.Rent((long)(Dk + Dv) * Bk * 2 + 2 * Bq * Bk);
        float* kt = scratch, vt = kt + (long)Dk * Bk, p = vt + (long)Dv * Bk, dp = p + Bq * Bk;
        float* dkAcc = dp + Bq * Bk, dvAcc = dkAcc + (long)Bk * Dk;
        try
        {
            for (long kvh = start; kvh < end; kvh++)
            {
                // The group's query rows are consecutive: [kvh·group·Tq, (kvh + 1)·group·Tq).
                long q0 = kvh * group * j.Tq, groupRows = (long)group * j.Tq;
                float* dqh = j.DQ + q0 * Dk;
                for (long r = 0; r < groupRows; r++)
                    j.D[q0 + r] = TensorPrimitives.Dot(new ReadOnlySpan<float>(j.DO + (q0 + r) * Dv, Dv), new ReadOnlySpan<float>(j.O + (q0 + r) * Dv, Dv));
                new Span<float>(dqh, (int)(groupRows * Dk)).Clear();
                for (int j0 = 0; j0 < j.Tk; j0 += Bk)
                {
                    int nk = Math.Min(Bk, j.Tk - j0);
                    float* kb = j.K + (kvh * j.Tk + j0) * Dk, vb = j.V + (kvh * j.Tk + j0) * Dv;
                    TileMath.Transpose(kb, Dk, nk, Dk, kt, Bk);
                    TileMath.Transpose(vb, Dv, nk, Dv, vt, Bk);
                    new Span<float>(dkAcc, nk * Dk).Clear();
                    new Span<float>(dvAcc, nk * Dv).Clear();
                    int iStart = j.Causal ? Math.Max(0, j0 - (j.Tk - j.Tq)) : 0;
                    for (int g = 0; g < group; g++)
                        for (int i0 = iStart; i0 < j.Tq; i0 += Bq)
                        {
                            int nq = Math.Min(Bq, j.Tq - i0);
                            long row0 = q0 + (long)g * j.Tq + i0;
                            float* qb = j.Q + row0 * Dk, dOb = j.DO + row0 * Dv;
                            Probabilities(j, qb, j.Lse + row0, i0, nq, kt, j0, nk, p);
                            // dv_acc[nk × Dv] += Pᵀ[nk × nq] · dO_blk[nq × Dv]
                            TileMath.MatMul(nk, Dv, nq, p, 1, Bk, dOb, Dv, dvAcc, Dv, accumulate: true);
                            // dP[nq × nk] = dO_blk · V_tileᵀ, then dS in place
                            TileMath.MatMul(nq, nk, Dv, dOb, Dv, 1, vt, Bk, dp, Bk, accumulate: false);
                            ScoreGrad(p, dp, j.D + row0, nq, nk);
                            // dk_acc[nk × Dk] += dSᵀ[nk × nq] · Q_blk[nq × Dk]
                            TileMath.MatMul(nk, Dk, nq, dp, 1, Bk, qb, Dk, dkAcc, Dk, accumulate: true);
                            // dq[nq × Dk] += dS[nq × nk] · K_tile[nk × Dk]   (scaled once at the end)
                            TileMath.MatMul(nq, Dk, nk, dp, Bk, 1, kb, Dk, j.DQ + row0 * Dk, Dk, accumulate: true);
                        }
                    long kvRow0 = kvh * j.Tk + j0;
                    TensorPrimitives.Multiply(new ReadOnlySpan<float>(dkAcc, nk * Dk), j.Scale,
                        new Span<float>(j.DK + kvRow0 * Dk, nk * Dk));
                    new ReadOnlySpan<float>(dvAcc, nk * Dv).CopyTo(new Span<float>(j.DV + kvRow0 * Dv, nk * Dv));
                }
                var dq = new Span<float>(dqh, (int)(groupRows * Dk));
                TensorPrimitives.Multiply(dq, j.Scale, dq);
            }
        }
        finally
        {
            GemmScratch.Return(scratch);
        }
    }

    /// <summary>
    /// Items = (K/V head, key tile): dv_j = Σ_i P_ij dO_i and dk_j = scale · Σ_i dS_ij q_i over the query blocks
    /// (of every query head of the group) that see the tile. Each item owns its rows of dk and dv, so there are
    /// no races.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardDkDvItems(void* state, long start, long end)
    {
        ref AttnJob j = ref *(AttnJob*)state;
        int Dk = j.Dk, Dv = j.Dv;
        // Scratch: Kᵀ [Dk][Bk] | Vᵀ [Dv][Bk] | P [Bq][Bk] | dP/dS [Bq][Bk] | dk acc [Bk][Dk] | dv acc [Bk][Dv].
        float* scratch = GemmScratch.Rent((long)(Dk + Dv) * Bk * 2 + 2 * Bq * Bk);
        float* kt = scratch, vt = kt + (long)Dk * Bk, p = vt + (long)Dv * Bk, dp = p + Bq * Bk;
        float* dkAcc = dp + Bq * Bk, dvAcc = dkAcc + (long)Bk * Dk;
        try
        {
            for (long item = start; item < end; item++)
            {
                long kvh = item / j.KTiles;
                int j0 = (int)(item % j.KTiles) * Bk, nk = Math.Min(Bk, j.Tk - j0);
                float* kb = j.K + (kvh * j.Tk + j0) * Dk, vb = j.V + (kvh * j.Tk + j0) * Dv;
                TileMath.Transpose(kb, Dk, nk, Dk, kt, Bk);
                TileMath.Transpose(vb, Dv, nk, Dv, vt, Bk);
                new Span<float>(dkAcc, nk * Dk).Clear();
                new Span<float>(dvAcc, nk * Dv).Clear();
                // The first query that sees key j0: Tk − Tq + i ≥ j0.
                int iStart = j.Causal ? Math.Max(0, j0 - (j.Tk - j.Tq)) : 0;
                for (long bh = kvh * j.Group; bh < (kvh + 1) * j.Group; bh++)
                    for (int i0 = iStart; i0 < j.Tq; i0 += Bq)
                    {
                        int nq = Math.Min(Bq, j.Tq - i0);
                        long row0 = bh * j.Tq + i0;
                        float* qb = j.Q + row0 * Dk, dOb = j.DO + row0 * Dv;
                        Probabilities(j, qb, j.Lse + row0, i0, nq, kt, j0, nk, p);
                        // dv_acc[nk × Dv] += Pᵀ[nk × nq] · dO_blk[nq × Dv]   (Pᵀ by swapped strides)
                        TileMath.MatMul(nk, Dv, nq, p, 1, Bk, dOb, Dv, dvAcc, Dv, accumulate: true);
                        // dP[nq × nk] = dO_blk · V_tileᵀ
                        TileMath.MatMul(nq, nk, Dv, dOb, Dv, 1, vt, Bk, dp, Bk, accumulate: false);
                        ScoreGrad(p, dp, j.D + row0, nq, nk);
                        // dk_acc[nk × Dk] += dSᵀ[nk × nq] · Q_blk[nq × Dk]
                        TileMath.MatMul(nk, Dk, nq, dp, 1, Bk, qb, Dk, dkAcc, Dk, accumulate: true);
                    }
                long kvRow0 = kvh * j.Tk + j0;
                TensorPrimitives.Multiply(new ReadOnlySpan<float>(dkAcc, nk * Dk), j.Scale,
                    new Span<float>(j.DK + kvRow0 * Dk, nk * Dk));
                new ReadOnlySpan<float>(dvAcc, nk * Dv).CopyTo(new Span<float>(j.DV + kvRow0 * Dv, nk * Dv));
            }
        }
        finally
        {
            GemmScratch.Return(scratch);
        }
    }
}
