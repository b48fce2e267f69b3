// Source: FlashAttention-2 (arXiv:2307.08691): tiled attention with an online softmax and a saved log-sum-exp; grouped
//         K/V heads as GQA (arXiv:2305.13245).
namespace NativeReasoner.Kernels.Reference;

public sealed unsafe partial class ReferenceKernels
{
    /// <summary>
    /// Last key index query i may see: Tk − Tq + i when causal (bottom-right aligned), else Tk − 1.
    /// Negative when the query sees no key at all (only possible with causal and Tq &gt; Tk).
    /// </summary>
    private static int LastVisibleKey(int i, int Tq, int Tk, bool causal) =>
        causal ? Math.Min(Tk - 1, Tk - Tq + i) : Tk - 1;

    /// <summary>
    /// Scores of one query row, in double: s[j] = scale · q_i·k_j for the visible keys 0..last, and the
    /// softmax probabilities p[j] = exp(s[j] − lse). Returns lse (−∞ when no key is visible).
    /// </summary>
    private static double ScoreRow(float* qi, float* kb, int Dk, int last, double scale, double[] p)
    {
        double max = double.NegativeInfinity;
        for (int j = 0; j <= last; j++)
        {
            double dot = 0;
            float* kj = kb + (long)j * Dk;
            for (int d = 0; d < Dk; d++) dot += (double)qi[d] * kj[d];
            p[j] = scale * dot;
            max = Math.Max(max, p[j]);
        }
        if (last < 0) return double.NegativeInfinity;
        double sum = 0;
        for (int j = 0; j <= last; j++) sum += Math.Exp(p[j] - max);
        double lse = max + Math.Log(sum);
        for (int j = 0; j <= last; j++) p[j] = Math.Exp(p[j] - lse);
        return lse;
    }

    /// <summary>
    /// o_i = Σ_j softmax_j(scale · q_i·k_j) v_j over the visible keys; lse_i = log Σ_j exp(scale · q_i·k_j).
    /// A query that sees no key (causal with Tq &gt; Tk) gets o_i = 0 and lse_i = −∞. Query head bh reads
    /// K/V head bh / kvGroup.
    /// </summary>
    public void AttentionForward(float* q, float* k, float* v, float* o, float* lse,
        int BH, int Tq, int Tk, int Dk, int Dv, float scale, bool causal, int kvGroup)
    {
        AttentionHeads.KvRows(nameof(AttentionForward), BH, kvGroup);
        var p = new double[Math.Max(1, Tk)];
        var acc = new double[Dv];
        for (int bh = 0; bh < BH; bh++)
        {
            long kvh = bh / kvGroup;
            float* qb = q + (long)bh * Tq * Dk, kb = k + kvh * Tk * Dk, vb = v + kvh * Tk * Dv;
            for (int i = 0; i < Tq; i++)
            {
                int last = LastVisibleKey(i, Tq, Tk, causal);
                double l = ScoreRow(qb + (long)i * Dk, kb, Dk, last, scale, p);
                Array.Clear(acc);
                for (int j = 0; j <= last; j++)
                {
                    float* vj = vb + (long)j * Dv;
                    for (int d = 0; d < Dv; d++) acc[d] += p[j] * vj[d];
                }
                float* oi = o + ((long)bh * Tq + i) * Dv;
                for (int d = 0; d < Dv; d++) oi[d] = (float)acc[d];
                lse[(long)bh * Tq + i] = (float)l;
            }
        }
    }

    /// <summary>
    /// Gradients of attention, recomputing the probabilities from q and k in double (o and lse of the
    /// forward are not trusted, so this oracle does not depend on the forward being right):
    /// dv_j = Σ_i P_ij dO_i; dP_ij = dO_i·v_j; dS_ij = P_ij (dP_ij − Σ_l P_il dP_il);
    /// dq_i = scale Σ_j dS_ij k_j; dk_j = scale Σ_i dS_ij q_i. With grouped K/V heads the sums over i for
    /// dk and dv run over the queries of every query head of the group (in double, rounded once).
    /// </summary>
    public void AttentionBackward(float* q, float* k, float* v, float* o, float* lse, float* dO,
        float* dq, float* dk, float* dv, int BH, int Tq, int Tk, int Dk, int Dv, float scale, bool causal,
        int kvGroup)
    {
        int kvRows = AttentionHeads.KvRows(nameof(AttentionBackward), BH, kvGroup);
        var p = new double[Math.Max(1, Tk)];
        var dp = new double[Math.Max(1, Tk)];
        var dqAcc = new double[Dk];
        var dkAcc = new double[(long)Tk * Dk];
        var dvAcc = new double[(long)Tk * Dv];
        for (int kvh = 0; kvh < kvRows; kvh++)
        {
            float* kb = k + (long)kvh * Tk * Dk, vb = v + (long)kvh * Tk * Dv;
            Array.Clear(dkAcc);
            Array.Clear(dvAcc);
            for (int bh = kvh * kvGroup; bh < (kvh + 1) * kvGroup; bh++)
            {
                float* qb = q + (long)bh * Tq * Dk;
                float* dOb = dO + (long)bh * Tq * Dv;
                for (int i = 0; i < Tq; i++)
                {
                    int last = LastVisibleKey(i, Tq, Tk, causal);
                    float* qi = qb + (long)i * Dk, dOi = dOb + (long)i * Dv;
                    ScoreRow(qi, kb, Dk, last, scale, p);
                    double rowDot = 0; // Σ_j P_ij dP_ij (= dO_i·o_i)
                    for (int j = 0; j <= last; j++)
                    {
                        float* vj = vb + (long)j * Dv;
                        double dot = 0;
                        for (int d = 0; d < Dv; d++)
                        {
                            dot += (double)dOi[d] * vj[d];
                            dvAcc[(long)j * Dv + d] += p[j] * dOi[d];
                        }
                        dp[j] = dot;
                        rowDot += p[j] * dot;
                    }
                    Array.Clear(dqAcc);
                    for (int j = 0; j <= last; j++)
                    {
                        double ds = p[j] * (dp[j] - rowDot) * scale;
                        float* kj = kb + (long)j * Dk;
                        for (int d = 0; d < Dk; d++)
                        {
                            dqAcc[d] += ds * kj[d];
                            dkAcc[(long)j * Dk + d] += ds * qi[d];
                        }
                    }
                    float* dqi = dq + ((long)bh * Tq + i) * Dk;
                    for (int d = 0; d < Dk; d++) dqi[d] = (float)dqAcc[d];
                }
            }
            float* dkb = dk + (long)kvh * Tk * Dk, dvb = dv + (long)kvh * Tk * Dv;
            for (long e = 0; e < (long)Tk * Dk; e++) dkb[e] = (float)dkAcc[e];
            for (long e = 0; e < (long)Tk * Dv; e++) dvb[e] = (float)dvAcc[e];
        }
    }
}
