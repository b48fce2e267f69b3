// Source: the DeepSeek-V3 router and grouped experts (arXiv:2412.19437 §2.1.2; official inference/model.py Gate and
//         MoE).
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using NativeReasoner.Kernels.Cpu.Gemm;
using NativeReasoner.Kernels.Reference;

namespace NativeReasoner.Kernels.Cpu;

// Mixture-of-experts routing, token permutation by expert, and the weighted dispatch / combine between
// token order and expert-sorted order. Tokens are independent, so the router and the row ops split the
// tokens over the worker pool; the counting sort runs on one thread (n·k ids, a few microseconds, less than
// a parallel prefix sum would cost to coordinate).
// The loop bodies are compiled optimised on their first call (AggressiveOptimization): a prefill calls each a few
// times per layer, too few for tiered compilation to promote it before a short run ends, and the tier-0 code
// ran the bench-tiny router about twice as slow.
public sealed unsafe partial class CpuKernels
{
    private struct MoeRouteState
    {
        public float* Scores, Bias, Selection, Weights;
        public int* Indices;
        public int Experts, Groups, TopkGroups, K;
        public bool UseBias, Normalize;
        public float Scale;
    }

    public void MoeRoute(float* scores, float* bias, int n, int experts, int groups, int topkGroups, int k, bool useBias,
        float* selection, int* indices, float* weights, bool normalize, float scale)
    {
        ReferenceKernels.CheckRouteArgs(n, experts, groups, topkGroups, k);
        if (useBias && bias == null) throw new ArgumentNullException(nameof(bias), "useBias needs the correction bias");
        var st = new MoeRouteState
        {
            Scores = scores, Bias = bias, Selection = selection, Weights = weights, Indices = indices,
            Experts = experts, Groups = groups, TopkGroups = topkGroups, K = k,
            UseBias = useBias, Normalize = normalize, Scale = scale,
        };
        // ~E·(2 + k/8) compares per token: a chunk of tokens worth one RowMinWork.
        CpuParallel.For(n, RowsMinChunk(experts * 4), &MoeRouteBody, &st);
    }

    /// <summary>(a at ia) is picked before (b at ib): numbers descending, ties by lower index, NaN after every number.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool RouteBefore(float a, int ia, float b, int ib)
    {
        bool na = float.IsNaN(a), nb = float.IsNaN(b);
        if (na != nb) return nb;
        if (!na && a != b) return a > b;
        return ia < ib;
    }

    /// <summary>
    /// Inserts (v at i) into the sorted list of the k best so far when it belongs there; i rises from call to
    /// call, so an equal value never displaces a kept one. The plain "smaller number" test rejects most experts.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TopKInsert(float v, int i, float* topV, int* topI, ref int count, int k)
    {
        if (count == k && (v < topV[k - 1] || !RouteBefore(v, i, topV[k - 1], topI[k - 1]))) return;
        int p = count < k ? count++ : k - 1;
        while (p > 0 && RouteBefore(v, i, topV[p - 1], topI[p - 1]))
        {
            topV[p] = topV[p - 1];
            topI[p] = topI[p - 1];
            p--;
        }
        topV[p] = v;
        topI[p] = i;
    }

    /// <summary>
    /// The scalar group scan (best and second best by strict &gt;, from −∞) on 16-lane vectors: best = the maximum;
    /// second = best again when it occurs twice, else the maximum of the rest. False (caller scans) when the group
    /// holds a NaN, which the strict compare skips but a vector maximum would not.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static bool GroupTop2Vector(float* x, int n, out float best, out float second)
    {
        var mx = Vector512.Create(float.NegativeInfinity);
        var nan = Vector512<float>.Zero;
        for (int j = 0; j < n; j += 16)
        {
            var v = Vector512.Load(x + j);
            nan |= ~Vector512.Equals(v, v).AsSingle();
            mx = Vector512.Max(mx, v);
        }
        best = second = float.NegativeInfinity;
        if (nan.ExtractMostSignificantBits() != 0) return false;
        best = HorizontalMax(mx);
        var vb = Vector512.Create(best);
        var rest = Vector512.Create(float.NegativeInfinity);
        int equal = 0;
        for (int j = 0; j < n; j += 16)
        {
            var v = Vector512.Load(x + j);
            var eq = Vector512.Equals(v, vb);
            equal += BitOperations.PopCount(eq.ExtractMostSignificantBits());
            rest = Vector512.Max(rest, Vector512.ConditionalSelect(eq, Vector512.Create(float.NegativeInfinity), v));
        }
        second = equal >= 2 ? best : HorizontalMax(rest);
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float HorizontalMax(Vector512<float> v)
    {
        var m = Vector256.Max(v.GetLower(), v.GetUpper());
        var q = Vector128.Max(m.GetLower(), m.GetUpper());
        q = Vector128.Max(q, Vector128.Shuffle(q, Vector128.Create(2, 3, 0, 1)));
        q = Vector128.Max(q, Vector128.Shuffle(q, Vector128.Create(1, 0, 3, 2)));
        return q.ToScalar();
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MoeRouteBody(void* state, long start, long end)
    {
        var st = (MoeRouteState*)state;
        int e = st->Experts, groups = st->Groups, k = st->K, perGroup = e / groups;
        // Per-token scratch on the stack (groups and k are small: 8 and 8 for DeepSeek-V3).
        float* gs = stackalloc float[groups];
        bool* keep = stackalloc bool[groups];
        float* topV = stackalloc float[k];
        int* topI = stackalloc int[k];
        bool vectorGroups = Vector512.IsHardwareAccelerated && perGroup % 16 == 0;
        for (long t = start; t < end; t++)
        {
            float* s = st->Scores + t * e;
            float* sel = st->Selection + t * e;
            // selection: [E] = s + bias (noaux_tc) or s.
            if (st->UseBias) TensorPrimitives.Add(new ReadOnlySpan<float>(s, e), new ReadOnlySpan<float>(st->Bias, e), new Span<float>(sel, e));
            else Buffer.MemoryCopy(s, sel, (long)e * sizeof(float), (long)e * sizeof(float));
            if (groups > 1)
            {
                // Group score: top-2 sum (noaux_tc) or max; strict > keeps NaN out and the first of equals.
                for (int g = 0; g < groups; g++)
                {
                    float best, second;
                    if (!(vectorGroups && GroupTop2Vector(sel + g * perGroup, perGroup, out best, out second)))
                    {
                        best = float.NegativeInfinity;
                        second = float.NegativeInfinity;
                        for (int j = g * perGroup; j < (g + 1) * perGroup; j++)
                        {
                            float v = sel[j];
                            if (v > best) { second = best; best = v; }
                            else if (v > second) second = v;
                        }
                    }
                    gs[g] = st->UseBias ? best + second : best;
                    keep[g] = false;
                }
                // Keep topkGroups groups by repeated selection: exactly the reference's order for ties and NaN.
                for (int r = 0; r < st->TopkGroups; r++)
                {
                    int bg = -1;
                    for (int g = 0; g < groups; g++)
                        if (!keep[g] && (bg < 0 || gs[g] > gs[bg])) bg = g;
                    keep[bg] = true;
                }
                for (int g = 0; g < groups; g++)
                    if (!keep[g]) new Span<float>(sel + g * perGroup, perGroup).Fill(float.NegativeInfinity);
            }
            // One pass with a sorted list of the k best so far (insertion; i rises, so an equal value never
            // displaces a kept one). The plain "smaller number" test rejects most experts with one compare.
            int count = 0, i = 0;
            for (; i < e && (count < k || (i & 15) != 0 || !Vector512.IsHardwareAccelerated); i++)
                TopKInsert(sel[i], i, topV, topI, ref count, k);
            if (Vector512.IsHardwareAccelerated)
            {
                // The list is full: only an expert the k-th would yield to can enter. A 16-lane compare finds
                // the candidates of a block (a superset, since the k-th only rises while the block is inserted);
                // each is then tested one by one in index order, so ties and NaN follow the same rule as above.
                // Most blocks (the dropped groups' −∞, most of the kept ones) have none.
                for (; i <= e - 16; i += 16)
                {
                    var v = Vector512.Load(sel + i);
                    float kth = topV[k - 1];
                    // A number yields only to a larger number; a NaN k-th yields to every number.
                    var cand = float.IsNaN(kth) ? Vector512.Equals(v, v) : Vector512.GreaterThan(v, Vector512.Create(kth));
                    ulong bits = cand.ExtractMostSignificantBits();
                    while (bits != 0)
                    {
                        int lane = BitOperations.TrailingZeroCount(bits);
                        bits &= bits - 1;
                        TopKInsert(sel[i + lane], i + lane, topV, topI, ref count, k);
                    }
                }
                for (; i < e; i++) TopKInsert(sel[i], i, topV, topI, ref count, k);
            }
            int* idx = st->Indices + t * k;
            float* w = st->Weights + t * k;
            float sum = 0f;
            for (int j = 0; j < k; j++)
            {
                idx[j] = topI[j];
                w[j] = s[topI[j]]; // the unbiased score weighs
                sum += w[j];
            }
            for (int j = 0; j < k; j++) w[j] = (st->Normalize ? w[j] / sum : w[j]) * st->Scale;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void MoePermute(int* indices, int n, int k, int experts, int* expertOffsets, int* slotOrder, int* slotPosition)
    {
        int slots = checked(n * k);
        // Counts land in offsets[e + 1], the prefix sum turns them into end positions shifted by one expert,
        // the scatter uses offsets[e] as expert e's cursor (leaving it at e's end = e+1's start), and a final
        // shift restores the starts: no scratch array.
        new Span<int>(expertOffsets, experts + 1).Clear();
        for (int s = 0; s < slots; s++)
        {
            int ex = indices[s];
            if ((uint)ex >= (uint)experts)
                throw new ArgumentOutOfRangeException(nameof(indices), ex, $"expert id at slot {s} is outside [0, {experts})");
            expertOffsets[ex + 1]++;
        }
        for (int ex = 0; ex < experts; ex++) expertOffsets[ex + 1] += expertOffsets[ex];
        for (int s = 0; s < slots; s++)
        {
            int pos = expertOffsets[indices[s]]++;
            slotOrder[pos] = s;
            if (slotPosition != null) slotPosition[s] = pos;
        }
        for (int ex = experts; ex > 0; ex--) expertOffsets[ex] = expertOffsets[ex - 1];
        expertOffsets[0] = 0;
    }

    private struct MoeRowsState
    {
        public float* X, Y, Weights, Dw;
        public int* Position;
        public int K, D;
    }

    public void MoeDispatch(float* x, int* slotPosition, float* weights, int n, int k, int d, float* y)
    {
        // x: [n, d] → y: [n·k, d]; one task per token writes its k slot rows.
        var st = new MoeRowsState { X = x, Y = y, Weights = weights, Position = slotPosition, K = k, D = d };
        CpuParallel.For(n, RowsMinChunk(k * d), &MoeDispatchBody, &st);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MoeDispatchBody(void* state, long start, long end)
    {
        var st = (MoeRowsState*)state;
        int k = st->K, d = st->D;
        long bytes = (long)d * sizeof(float);
        for (long t = start; t < end; t++)
        {
            var x = new ReadOnlySpan<float>(st->X + t * d, d);
            for (int j = 0; j < k; j++)
            {
                long s = t * k + j;
                float* dst = st->Y + (long)st->Position[s] * d;
                if (st->Weights == null) Buffer.MemoryCopy(st->X + t * d, dst, bytes, bytes);
                else TensorPrimitives.Multiply(x, st->Weights[s], new Span<float>(dst, d));
            }
        }
    }

    public void MoeCombine(float* src, int* slotPosition, float* weights, int n, int k, int d, float* y)
    {
        // src: [n·k, d] → y: [n, d]; one task per token sums its k slot rows in j order.
        var st = new MoeRowsState { X = src, Y = y, Weights = weights, Position = slotPosition, K = k, D = d };
        CpuParallel.For(n, RowsMinChunk(k * d), &MoeCombineBody, &st);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MoeCombineBody(void* state, long start, long end)
    {
        var st = (MoeRowsState*)state;
        int k = st->K, d = st->D;
        if (Vector512.IsHardwareAccelerated && d >= 16)
        {
            MoeCombineVector(st, start, end);
            return;
        }
        for (long t = start; t < end; t++)
        {
            var y = new Span<float>(st->Y + t * d, d);
            y.Clear();
            for (int j = 0; j < k; j++)
            {
                long s = t * k + j;
                var row = new ReadOnlySpan<float>(st->X + (long)st->Position[s] * d, d);
                if (st->Weights == null) TensorPrimitives.Add(y, row, y);
                else TensorPrimitives.MultiplyAdd(row, st->Weights[s], y, y);
            }
        }
    }

    public void MoeCombineWeightGrad(float* dy, float* src, int* slotPosition, int n, int k, int d, float* dw)
    {
        // dy: [n, d], src: [n·k, d] → dw: [n·k], a dot product per slot.
        var st = new MoeRowsState { X = src, Y = dy, Dw = dw, Position = slotPosition, K = k, D = d };
        CpuParallel.For(n, RowsMinChunk(k * d), &MoeCombineWeightGradBody, &st);
    }

    /// <summary>
    /// <see cref="MoeCombineBody"/> 16 columns at a time with the k slot rows summed in registers: one store per
    /// output vector instead of a read-modify-write per slot. The same arithmetic in the same order (y = 0, then
    /// y = y + w_j·row_j for j = 0…k−1, multiply and add rounded separately), so the results are identical.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MoeCombineVector(MoeRowsState* st, long start, long end)
    {
        int k = st->K, d = st->D;
        float** rows = stackalloc float*[k];
        for (long t = start; t < end; t++)
        {
            float* y = st->Y + t * d;
            float* w = st->Weights == null ? null : st->Weights + t * k;
            for (int j = 0; j < k; j++) rows[j] = st->X + (long)st->Position[t * k + j] * d;
            int c = 0;
            for (; c <= d - 16; c += 16)
            {
                var acc = Vector512<float>.Zero;
                if (w == null)
                    for (int j = 0; j < k; j++) acc += Vector512.Load(rows[j] + c);
                else
                    for (int j = 0; j < k; j++) acc += Vector512.Load(rows[j] + c) * Vector512.Create(w[j]);
                acc.Store(y + c);
            }
            for (; c < d; c++)
            {
                float acc = 0f;
                for (int j = 0; j < k; j++) acc += w == null ? rows[j][c] : rows[j][c] * w[j];
                y[c] = acc;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MoeCombineWeightGradBody(void* state, long start, long end)
    {
        var st = (MoeRowsState*)state;
        int k = st->K, d = st->D;
        for (long t = start; t < end; t++)
        {
            var g = new ReadOnlySpan<float>(st->Y + t * d, d);
            for (int j = 0; j < k; j++)
            {
                long s = t * k + j;
                st->Dw[s] = TensorPrimitives.Dot(g, new ReadOnlySpan<float>(st->X + (long)st->Position[s] * d, d));
            }
        }
    }

    private struct GemmGroupedState
    {
        public int* M, K;
        public float** A, B, C;
        public int N, Lda, Ldb, Ldc;
        public float Alpha, Beta;
        public bool TransA, TransB;
    }

    public void GemmGrouped(int count, bool transA, bool transB, int* M, int N, int* K, float alpha,
        float** A, int lda, float** B, int ldb, float beta, float** C, int ldc)
    {
        // The items are small (an expert's rows × 32..2048): one fork-join over all of them, each item's GEMM
        // running inline on the thread that claims it, instead of a fork-join per item.
        var st = new GemmGroupedState
        {
            M = M, K = K, A = A, B = B, C = C, N = N, Lda = lda, Ldb = ldb, Ldc = ldc,
            Alpha = alpha, Beta = beta, TransA = transA, TransB = transB,
        };
        long macs = 0;
        for (int i = 0; i < count; i++) macs += (long)M[i] * N * Math.Max(1, K[i]);
        // Items are uneven (expert loads differ): small chunks let the threads balance them.
        if (macs < 1 << 16) GemmGroupedBody(&st, 0, count);
        else CpuParallel.For(count, 1, &GemmGroupedBody, &st);
    }

    /// <summary>Items with at most this many rows (or, for Aᵀ·B, this many summed rows) take the thin path.</summary>
    private const int ThinRows = 8;

    /// <summary>Widest output row the thin path accumulates on the stack.</summary>
    private const int ThinMaxN = 4096;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void GemmGroupedBody(void* state, long start, long end)
    {
        var st = (GemmGroupedState*)state;
        for (long i = start; i < end; i++)
        {
            int m = st->M[i], k = st->K[i];
            if (m <= 0) continue;
            // An expert with a token or two (decode) is a handful of matrix-vector products: SIMD dots or
            // AXPYs straight on the operands beat the general GEMM, which would pack or run a scalar loop.
            bool thin = st->N <= ThinMaxN && (st->TransA ? k <= ThinRows : m <= ThinRows);
            if (thin && i + 1 < end) ThinKernels.PrefetchHead(st->B[i + 1]);
            if (thin) ThinGemm(st, m, k, st->A[i], st->B[i], st->C[i]);
            else
                Instance.Gemm(1, st->TransA, st->TransB, m, st->N, k, st->Alpha, st->A[i], st->Lda, 0,
                    st->B[i], st->Ldb, 0, st->Beta, st->C[i], st->Ldc, 0);
        }
    }

    /// <summary>
    /// C = alpha·op(A)·op(B) + beta·C one output row at a time, for few rows of A (or, with transA, few summed
    /// rows): op(B) with transB has contiguous columns (a dot each), without it contiguous rows (an AXPY each).
    /// </summary>
    private static void ThinGemm(GemmGroupedState* st, int m, int k, float* a, float* b, float* c)
    {
        if (ThinKernels.Supported && !(st->TransA && st->TransB))
        {
            if (st->TransB) ThinKernels.DotsNT(m, st->N, k, a, st->Lda, b, st->Ldb, c, st->Ldc, st->Alpha, st->Beta);
            // op(A)[r, p] = a[r·lda + p], or a[p·lda + r] with transA.
            else if (st->TransA) ThinKernels.Axpy(m, st->N, k, a, 1, st->Lda, b, st->Ldb, c, st->Ldc, st->Alpha, st->Beta);
            else ThinKernels.Axpy(m, st->N, k, a, st->Lda, 1, b, st->Ldb, c, st->Ldc, st->Alpha, st->Beta);
            return;
        }
        ThinGemmPrimitives(st, m, k, a, b, c);
    }

    /// <summary>The same products through TensorPrimitives calls (no Vector512, or Aᵀ·Bᵀ).</summary>
    private static void ThinGemmPrimitives(GemmGroupedState* st, int m, int k, float* a, float* b, float* c)
    {
        int n = st->N;
        float* acc = stackalloc float[n];
        var row = new Span<float>(acc, n);
        for (int r = 0; r < m; r++)
        {
            // op(A)[r, p] = a[r·lda + p], or a[p·lda + r] with transA.
            if (st->TransB)
            {
                if (!st->TransA)
                {
                    var ar = new ReadOnlySpan<float>(a + (long)r * st->Lda, k);
                    for (int col = 0; col < n; col++) acc[col] = TensorPrimitives.Dot(ar, new ReadOnlySpan<float>(b + (long)col * st->Ldb, k));
                }
                else
                {
                    for (int col = 0; col < n; col++)
                    {
                        float sum = 0f;
                        for (int p = 0; p < k; p++) sum += a[(long)p * st->Lda + r] * b[(long)col * st->Ldb + p];
                        acc[col] = sum;
                    }
                }
            }
            else
            {
                row.Clear();
                for (int p = 0; p < k; p++)
                {
                    float ap = st->TransA ? a[(long)p * st->Lda + r] : a[(long)r * st->Lda + p];
                    TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(b + (long)p * st->Ldb, n), ap, row, row);
                }
            }
            var cr = new Span<float>(c + (long)r * st->Ldc, n);
            if (st->Beta == 0f) TensorPrimitives.Multiply(row, st->Alpha, cr);
            else
            {
                // c = alpha·acc + beta·c
                TensorPrimitives.Multiply(cr, st->Beta, cr);
                TensorPrimitives.MultiplyAdd(row, st->Alpha, cr, cr);
            }
        }
    }
}
