using ILGPU;
using ILGPU.Runtime;
using NativeReasoner.Kernels.Reference;

namespace NativeReasoner.Kernels.Ilgpu;

// Mixture-of-experts routing and token permutation on the device, so that routing needs no host round
// trip: the router runs one thread per token; the stable counting sort runs in four small launches over
// chunks of slots (count per chunk, scan per expert down the chunks, scan over experts, scatter per chunk),
// which keeps it deterministic without atomics; dispatch / combine are one thread per element.
public sealed unsafe partial class IlgpuKernels
{
    /// <summary>Most expert groups the device router handles: the kept groups are a 64-bit mask.</summary>
    internal const int MaxRouteGroups = 64;

    /// <summary>Slots per chunk of the device counting sort.</summary>
    private const int PermuteChunk = 64;

    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, MoeRouteArgs>? _moeRoute;
    private Action<Index1D, ArrayView<int>, ArrayView<int>, int, int, int>? _permuteCount;
    private Action<Index1D, ArrayView<int>, ArrayView<int>, int, int>? _permuteScanChunks;
    private Action<Index1D, ArrayView<int>, int>? _permuteScanExperts;
    private Action<Index1D, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<int>, int, int, int, int>? _permuteScatter;
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int, int>? _moeDispatch, _moeCombine;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int>? _moeWeightGrad;

    internal struct MoeRouteArgs
    {
        public int Experts, Groups, TopkGroups, K, UseBias, Normalize;
        public float Scale;
    }

    // ---------------------------------------------------------------- router

    public void MoeRoute(float* scores, float* bias, int n, int experts, int groups, int topkGroups, int k, bool useBias,
        float* selection, int* indices, float* weights, bool normalize, float scale)
    {
        ReferenceKernels.CheckRouteArgs(n, experts, groups, topkGroups, k);
        if (groups > MaxRouteGroups) throw new NotSupportedException($"the ILGPU router takes at most {MaxRouteGroups} expert groups, got {groups}");
        if (useBias && bias == null) throw new ArgumentNullException(nameof(bias), "useBias needs the correction bias");
        if (n == 0) return;
        var args = new MoeRouteArgs
        {
            Experts = experts, Groups = groups, TopkGroups = topkGroups, K = k,
            UseBias = useBias ? 1 : 0, Normalize = normalize ? 1 : 0, Scale = scale,
        };
        lock (_backend.Sync)
            (_moeRoute ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, MoeRouteArgs>(MoeRouteKernel))(
                n, F(scores), useBias ? F(bias) : F(scores), F(selection), I(indices), F(weights), args);
    }

    /// <summary>(a at ia) is picked before (b at ib): numbers descending, ties by lower index, NaN after every number.</summary>
    private static bool RouteBefore(float a, int ia, float b, int ib)
    {
        bool na = float.IsNaN(a), nb = float.IsNaN(b);
        if (na != nb) return nb;
        if (!na && a != b) return a > b;
        return ia < ib;
    }

    /// <summary>Group g's score over selection row <paramref name="row"/>: top-2 sum (topTwo) or max; NaN skipped.</summary>
    private static float GroupScore(ArrayView<float> sel, long row, int g, int perGroup, int topTwo)
    {
        float best = float.NegativeInfinity, second = float.NegativeInfinity;
        for (int i = g * perGroup; i < (g + 1) * perGroup; i++)
        {
            float v = sel[row + i];
            if (v > best) { second = best; best = v; }
            else if (v > second) second = v;
        }
        return topTwo != 0 ? best + second : best;
    }

    /// <summary>
    /// One thread per token t. selection: [n, E] (written, then read back by the same thread); indices,
    /// weights: [n, k]. Group scores are recomputed when compared (groups·perGroup reads per kept group)
    /// instead of held in per-thread arrays; top-k pick j is the best expert ranking strictly after pick j−1
    /// (the order is total), so no expert is marked and nothing is sorted.
    /// </summary>
    private static void MoeRouteKernel(Index1D t, ArrayView<float> scores, ArrayView<float> bias, ArrayView<float> sel,
        ArrayView<int> indices, ArrayView<float> weights, MoeRouteArgs a)
    {
        int e = a.Experts, perGroup = e / a.Groups;
        long row = (long)(int)t * e;
        for (int i = 0; i < e; i++) sel[row + i] = scores[row + i] + (a.UseBias != 0 ? bias[i] : 0f);
        if (a.Groups > 1)
        {
            ulong keep = 0;
            for (int r = 0; r < a.TopkGroups; r++)
            {
                // The reference's loop: the first group not kept yet, replaced only by a strictly larger score.
                int bg = -1;
                float bs = 0f;
                for (int g = 0; g < a.Groups; g++)
                {
                    if ((keep & (1UL << g)) != 0) continue;
                    float gs = GroupScore(sel, row, g, perGroup, a.UseBias);
                    if (bg < 0 || gs > bs) { bg = g; bs = gs; }
                }
                keep |= 1UL << bg;
            }
            for (int g = 0; g < a.Groups; g++)
                if ((keep & (1UL << g)) == 0)
                    for (int i = g * perGroup; i < (g + 1) * perGroup; i++) sel[row + i] = float.NegativeInfinity;
        }
        float prevV = 0f, sum = 0f;
        int prevI = -1;
        for (int j = 0; j < a.K; j++)
        {
            float bv = 0f;
            int bi = -1;
            for (int i = 0; i < e; i++)
            {
                float v = sel[row + i];
                if (prevI >= 0 && !RouteBefore(prevV, prevI, v, i)) continue;
                if (bi < 0 || RouteBefore(v, i, bv, bi)) { bv = v; bi = i; }
            }
            indices[(long)(int)t * a.K + j] = bi;
            float w = scores[row + bi];
            weights[(long)(int)t * a.K + j] = w;
            sum += w;
            prevV = bv;
            prevI = bi;
        }
        for (int j = 0; j < a.K; j++)
        {
            long at = (long)(int)t * a.K + j;
            weights[at] = (a.Normalize != 0 ? weights[at] / sum : weights[at]) * a.Scale;
        }
    }

    // ---------------------------------------------------------------- permutation

    public void MoePermute(int* indices, int n, int k, int experts, int* expertOffsets, int* slotOrder, int* slotPosition)
    {
        if (experts < 1) throw new ArgumentOutOfRangeException(nameof(experts), experts, "must be ≥ 1");
        int slots = checked(n * k);
        int chunks = (slots + PermuteChunk - 1) / PermuteChunk;
        lock (_backend.Sync)
        {
            if (slots == 0)
            {
                Mem.Clear((byte*)expertOffsets, (experts + 1L) * sizeof(int));
                return;
            }
            // counts: [chunks, E]: slots of chunk c routed to expert e, then (after the scan) where chunk c's
            // first such slot goes within e's range.
            using var counts = Scratch<int>((long)chunks * experts);
            var idx = I(indices);
            var offsets = I(expertOffsets);
            (_permuteCount ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, ArrayView<int>, int, int, int>(PermuteCountKernel))(
                chunks, idx, counts.View, slots, experts, PermuteChunk);
            (_permuteScanChunks ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, ArrayView<int>, int, int>(PermuteScanChunksKernel))(
                experts, counts.View, offsets, chunks, experts);
            (_permuteScanExperts ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, int>(PermuteScanExpertsKernel))(
                1, offsets, experts);
            (_permuteScatter ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<int>, int, int, int, int>(PermuteScatterKernel))(
                chunks, idx, counts.View, offsets, I(slotOrder), slotPosition == null ? I(slotOrder) : I(slotPosition),
                slots, experts, PermuteChunk, slotPosition == null ? 0 : 1);
        }
    }

    /// <summary>One thread per chunk c: counts[c, e] = slots s in [c·chunk, (c+1)·chunk) with indices[s] = e.</summary>
    private static void PermuteCountKernel(Index1D c, ArrayView<int> indices, ArrayView<int> counts, int slots, int experts, int chunk)
    {
        long row = (long)(int)c * experts;
        for (int e = 0; e < experts; e++) counts[row + e] = 0;
        int end = Math.Min(slots, (c + 1) * chunk);
        for (int s = c * chunk; s < end; s++)
        {
            int ex = indices[s];
            if ((uint)ex < (uint)experts) counts[row + ex]++;
        }
    }

    /// <summary>One thread per expert e: exclusive scan of counts[·, e] down the chunks; offsets[e + 1] = e's total.</summary>
    private static void PermuteScanChunksKernel(Index1D e, ArrayView<int> counts, ArrayView<int> offsets, int chunks, int experts)
    {
        int run = 0;
        for (int c = 0; c < chunks; c++)
        {
            long at = (long)c * experts + (int)e;
            int v = counts[at];
            counts[at] = run;
            run += v;
        }
        offsets[e + 1] = run;
    }

    /// <summary>One thread: offsets[0] = 0 and the running sum over experts turns totals into starts.</summary>
    private static void PermuteScanExpertsKernel(Index1D i, ArrayView<int> offsets, int experts)
    {
        offsets[0] = 0;
        for (int e = 0; e < experts; e++) offsets[e + 1] += offsets[e];
    }

    /// <summary>One thread per chunk: its slots, in order, go to offsets[e] + (chunk's cursor for e)++ — stable.</summary>
    private static void PermuteScatterKernel(Index1D c, ArrayView<int> indices, ArrayView<int> cursor, ArrayView<int> offsets,
        ArrayView<int> slotOrder, ArrayView<int> slotPosition, int slots, int experts, int chunk, int writePosition)
    {
        long row = (long)(int)c * experts;
        int end = Math.Min(slots, (c + 1) * chunk);
        for (int s = c * chunk; s < end; s++)
        {
            int ex = indices[s];
            if ((uint)ex >= (uint)experts) continue;
            int pos = offsets[ex] + cursor[row + ex];
            cursor[row + ex]++;
            slotOrder[pos] = s;
            if (writePosition != 0) slotPosition[s] = pos;
        }
    }

    // ---------------------------------------------------------------- dispatch / combine

    public void MoeDispatch(float* x, int* slotPosition, float* weights, int n, int k, int d, float* y)
    {
        long total = (long)n * k * d;
        if (total == 0) return;
        lock (_backend.Sync)
            (_moeDispatch ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int, int>(MoeDispatchKernel))(
                Extent(total), F(x), I(slotPosition), weights == null ? F(x) : F(weights), F(y), k, d, weights == null ? 0 : 1);
    }

    /// <summary>One thread per element (s, i) of the slots: y[pos[s], i] = w[s] · x[s / k, i].</summary>
    private static void MoeDispatchKernel(Index1D e, ArrayView<float> x, ArrayView<int> pos, ArrayView<float> w, ArrayView<float> y,
        int k, int d, int weighted)
    {
        long s = (int)e / d;
        int i = (int)(e - s * d);
        float v = x[s / k * d + i];
        y[(long)pos[s] * d + i] = weighted != 0 ? w[s] * v : v;
    }

    public void MoeCombine(float* src, int* slotPosition, float* weights, int n, int k, int d, float* y)
    {
        long total = (long)n * d;
        if (total == 0) return;
        lock (_backend.Sync)
            (_moeCombine ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int, int>(MoeCombineKernel))(
                Extent(total), F(src), I(slotPosition), weights == null ? F(src) : F(weights), F(y), k, d, weights == null ? 0 : 1);
    }

    /// <summary>One thread per element (t, i) of y: Σ_j w[t·k + j] · src[pos[t·k + j], i], j ascending.</summary>
    private static void MoeCombineKernel(Index1D e, ArrayView<float> src, ArrayView<int> pos, ArrayView<float> w, ArrayView<float> y,
        int k, int d, int weighted)
    {
        long t = (int)e / d;
        int i = (int)(e - t * d);
        float acc = 0f;
        for (int j = 0; j < k; j++)
        {
            long s = t * k + j;
            float v = src[(long)pos[s] * d + i];
            acc += weighted != 0 ? w[s] * v : v;
        }
        y[e] = acc;
    }

    public void MoeCombineWeightGrad(float* dy, float* src, int* slotPosition, int n, int k, int d, float* dw)
    {
        long slots = (long)n * k;
        if (slots == 0) return;
        lock (_backend.Sync)
            (_moeWeightGrad ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int>(MoeCombineWeightGradKernel))(
                Extent(slots), F(dy), F(src), I(slotPosition), F(dw), k, d);
    }

    /// <summary>One thread per slot s: dw[s] = dy[s / k, :] · src[pos[s], :].</summary>
    private static void MoeCombineWeightGradKernel(Index1D s, ArrayView<float> dy, ArrayView<float> src, ArrayView<int> pos,
        ArrayView<float> dw, int k, int d)
    {
        long g = (long)((int)s / k) * d, r = (long)pos[s] * d;
        float acc = 0f;
        for (int i = 0; i < d; i++) acc += dy[g + i] * src[r + i];
        dw[s] = acc;
    }

    public void GemmGrouped(int count, bool transA, bool transB, int* M, int N, int* K, float alpha,
        float** A, int lda, float** B, int ldb, float beta, float** C, int ldc)
    {
        // The items are separate allocations (one parameter per expert): one tiled GEMM launch each, queued
        // back to back on the stream.
        for (int i = 0; i < count; i++)
            if (M[i] > 0) Gemm(1, transA, transB, M[i], N, K[i], alpha, A[i], lda, 0, B[i], ldb, 0, beta, C[i], ldc, 0);
    }
}
