// Source: the DeepSeek-V3 router and grouped experts (arXiv:2412.19437 §2.1.2; official inference/model.py Gate and
//         MoE).
namespace NativeReasoner.Kernels.Reference;

// Mixture-of-experts routing and token permutation, written as the plain loops of the model's former
// host-side router (repeated selection, "taken" marked NaN), so the fast backends are checked against the
// behaviour the model was verified with.
public sealed unsafe partial class ReferenceKernels
{
    /// <summary>Throws unless the router's sizes are consistent (shared by every backend).</summary>
    internal static void CheckRouteArgs(int n, int experts, int groups, int topkGroups, int k)
    {
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), n, "must be ≥ 0");
        if (experts < 1) throw new ArgumentOutOfRangeException(nameof(experts), experts, "must be ≥ 1");
        if (k < 1 || k > experts) throw new ArgumentOutOfRangeException(nameof(k), k, $"must be in [1, {experts}]");
        if (groups < 1 || experts % groups != 0)
            throw new ArgumentOutOfRangeException(nameof(groups), groups, $"must divide the {experts} experts");
        if (topkGroups < 1 || topkGroups > groups)
            throw new ArgumentOutOfRangeException(nameof(topkGroups), topkGroups, $"must be in [1, {groups}]");
    }

    public void MoeRoute(float* scores, float* bias, int n, int experts, int groups, int topkGroups, int k, bool useBias,
        float* selection, int* indices, float* weights, bool normalize, float scale)
    {
        CheckRouteArgs(n, experts, groups, topkGroups, k);
        int e = experts, perGroup = experts / groups;
        var gs = new float[groups];
        var keep = new bool[groups];
        var sc = new float[e];
        for (int t = 0; t < n; t++)
        {
            // selection: [n, E]; the biased score picks, the unbiased one weighs.
            float* sel = selection + (long)t * e;
            for (int i = 0; i < e; i++) sel[i] = scores[(long)t * e + i] + (useBias ? bias[i] : 0f);
            if (groups > 1)
            {
                for (int g = 0; g < groups; g++)
                {
                    float best = float.NegativeInfinity, second = float.NegativeInfinity;
                    for (int i = g * perGroup; i < (g + 1) * perGroup; i++)
                    {
                        float v = sel[i];
                        if (v > best) { second = best; best = v; }
                        else if (v > second) second = v;
                    }
                    gs[g] = useBias ? best + second : best;
                    keep[g] = false;
                }
                for (int r = 0; r < topkGroups; r++)
                {
                    int bg = -1;
                    for (int g = 0; g < groups; g++)
                        if (!keep[g] && (bg < 0 || gs[g] > gs[bg])) bg = g;
                    keep[bg] = true;
                }
                for (int g = 0; g < groups; g++)
                    if (!keep[g])
                        for (int i = g * perGroup; i < (g + 1) * perGroup; i++) sel[i] = float.NegativeInfinity;
            }
            // Top-k by repeated selection on a copy; a taken expert becomes NaN, which compares false with
            // everything. When only NaN is left, the lowest index not yet taken is next.
            for (int i = 0; i < e; i++) sc[i] = sel[i];
            int* idx = indices + (long)t * k;
            for (int j = 0; j < k; j++)
            {
                int bi = -1;
                float bv = float.NegativeInfinity;
                for (int i = 0; i < e; i++)
                    if (sc[i] > bv || (bi < 0 && sc[i] == bv)) { bv = sc[i]; bi = i; }
                if (bi < 0)
                {
                    for (int i = 0; i < e && bi < 0; i++)
                    {
                        bool used = false;
                        for (int q = 0; q < j; q++) used |= idx[q] == i;
                        if (!used) bi = i;
                    }
                }
                idx[j] = bi;
                sc[bi] = float.NaN;
            }
            float* w = weights + (long)t * k;
            float sum = 0f;
            for (int j = 0; j < k; j++) { w[j] = scores[(long)t * e + idx[j]]; sum += w[j]; }
            for (int j = 0; j < k; j++) w[j] = (normalize ? w[j] / sum : w[j]) * scale;
        }
    }

    public void MoePermute(int* indices, int n, int k, int experts, int* expertOffsets, int* slotOrder, int* slotPosition)
    {
        int slots = checked(n * k);
        var counts = new int[experts];
        for (int s = 0; s < slots; s++)
        {
            int ex = indices[s];
            if ((uint)ex >= (uint)experts)
                throw new ArgumentOutOfRangeException(nameof(indices), ex, $"expert id at slot {s} is outside [0, {experts})");
            counts[ex]++;
        }
        expertOffsets[0] = 0;
        for (int ex = 0; ex < experts; ex++) expertOffsets[ex + 1] = expertOffsets[ex] + counts[ex];
        var cursor = new int[experts];
        for (int ex = 0; ex < experts; ex++) cursor[ex] = expertOffsets[ex];
        for (int s = 0; s < slots; s++)
        {
            int pos = cursor[indices[s]]++;
            slotOrder[pos] = s;
            if (slotPosition != null) slotPosition[s] = pos;
        }
    }

    public void MoeDispatch(float* x, int* slotPosition, float* weights, int n, int k, int d, float* y)
    {
        for (long s = 0; s < (long)n * k; s++)
        {
            long t = s / k;
            float w = weights == null ? 1f : weights[s];
            for (int i = 0; i < d; i++) y[(long)slotPosition[s] * d + i] = w * x[t * d + i];
        }
    }

    public void MoeCombine(float* src, int* slotPosition, float* weights, int n, int k, int d, float* y)
    {
        for (long t = 0; t < n; t++)
            for (int i = 0; i < d; i++)
            {
                double acc = 0;
                for (int j = 0; j < k; j++)
                {
                    long s = t * k + j;
                    acc += (double)(weights == null ? 1f : weights[s]) * src[(long)slotPosition[s] * d + i];
                }
                y[t * d + i] = (float)acc;
            }
    }

    public void MoeCombineWeightGrad(float* dy, float* src, int* slotPosition, int n, int k, int d, float* dw)
    {
        for (long s = 0; s < (long)n * k; s++)
        {
            long t = s / k;
            double acc = 0;
            for (int i = 0; i < d; i++) acc += (double)dy[t * d + i] * src[(long)slotPosition[s] * d + i];
            dw[s] = (float)acc;
        }
    }

    public void GemmGrouped(int count, bool transA, bool transB, int* M, int N, int* K, float alpha,
        float** A, int lda, float** B, int ldb, float beta, float** C, int ldc)
    {
        for (int i = 0; i < count; i++)
            if (M[i] > 0) Gemm(1, transA, transB, M[i], N, K[i], alpha, A[i], lda, 0, B[i], ldb, 0, beta, C[i], ldc, 0);
    }
}
