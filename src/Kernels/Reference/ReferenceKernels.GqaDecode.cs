// Source: GQA (arXiv:2305.13245) decode against per-sequence K/V caches, in the layout of HF's cache_utils.py.
namespace NativeReasoner.Kernels.Reference;

/// <summary>
/// Grouped-query decode attention against per-sequence K/V caches (the oracle: plain loops, double sums).
/// </summary>
public sealed unsafe partial class ReferenceKernels : IGqaDecodeAttention
{
    /// <summary>
    /// For every sequence b and query head h: the probabilities over the first lengths[b] cache rows of K/V head
    /// h / (Hq / Hkv) (<see cref="ScoreRow"/>, in double), o = Σ_j p_j v_j, lse = the log-sum-exp.
    /// </summary>
    public void GqaDecodeAttention(float* q, float* kCache, float* vCache, int* lengths, float* o, float* lse,
        int batch, int Hq, int Hkv, int capacity, int Dk, int Dv, float scale)
    {
        IGqaDecodeAttention.Validate(nameof(GqaDecodeAttention), lengths, batch, Hq, Hkv, capacity, Dk, Dv);
        int group = Hq / Hkv;
        var p = new double[Math.Max(1, capacity)];
        var acc = new double[Dv];
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < Hq; h++)
            {
                long kvRow = (long)b * Hkv + h / group, row = (long)b * Hq + h;
                float* kb = kCache + kvRow * capacity * Dk, vb = vCache + kvRow * capacity * Dv;
                int last = lengths[b] - 1;
                double l = ScoreRow(q + row * Dk, kb, Dk, last, scale, p);
                Array.Clear(acc);
                for (int j = 0; j <= last; j++)
                {
                    float* vj = vb + (long)j * Dv;
                    for (int d = 0; d < Dv; d++) acc[d] += p[j] * vj[d];
                }
                for (int d = 0; d < Dv; d++) o[row * Dv + d] = (float)acc[d];
                lse[row] = (float)l;
            }
    }
}
