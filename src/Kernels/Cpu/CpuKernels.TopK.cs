// Source: torch.topk (sorted, largest), NaN ordered above every number.
namespace NativeReasoner.Kernels.Cpu;

public sealed unsafe partial class CpuKernels
{
    private struct TopKState
    {
        public float* X, Values;
        public long* Indices;
        public int Cols, K;
    }

    public void TopK(float* x, float* values, long* indices, int rows, int cols, int k)
    {
        // x: [rows, cols] → values, indices: [rows, k]
        if (k < 0 || k > cols) throw new ArgumentOutOfRangeException(nameof(k), k, "must be in [0, cols]");
        var st = new TopKState { X = x, Values = values, Indices = indices, Cols = cols, K = k };
        CpuParallel.For(rows, RowsMinChunk(cols), &TopKBody, &st);
    }

    // Partial selection with a size-k heap kept directly in the output row (root = the worst kept element),
    // O(cols·log k); a heap sort of the survivors then leaves them best first.
    private static void TopKBody(void* state, long start, long end)
    {
        var st = (TopKState*)state;
        int cols = st->Cols, k = st->K;
        if (k == 0) return;
        for (long r = start; r < end; r++)
        {
            float* x = st->X + r * cols;
            float* hv = st->Values + r * k;
            long* hi = st->Indices + r * k;
            for (int c = 0; c < k; c++)
            {
                hv[c] = x[c];
                hi[c] = c;
                SiftUp(hv, hi, c);
            }
            for (int c = k; c < cols; c++)
            {
                float v = x[c];
                // Fast reject: a plain smaller number never enters. Otherwise compare fully (NaN, ties):
                // c is larger than every kept index, so an equal value does not displace the root.
                if (v < hv[0] || !Before(v, c, hv[0], hi[0])) continue;
                hv[0] = v;
                hi[0] = c;
                SiftDown(hv, hi, 0, k);
            }
            for (int n = k - 1; n > 0; n--)
            {
                (hv[0], hv[n]) = (hv[n], hv[0]);
                (hi[0], hi[n]) = (hi[n], hi[0]);
                SiftDown(hv, hi, 0, n);
            }
        }
    }

    /// <summary>(a, ia) ranks before (b, ib): larger first, NaN above every number, ties by lower index.</summary>
    private static bool Before(float a, long ia, float b, long ib)
    {
        bool na = float.IsNaN(a), nb = float.IsNaN(b);
        if (na != nb) return na;
        if (!na && a != b) return a > b;
        return ia < ib;
    }

    // Min-heap on rank: a parent ranks after (is worse than) its children.
    private static void SiftUp(float* v, long* ix, int i)
    {
        while (i > 0)
        {
            int parent = (i - 1) >> 1;
            if (!Before(v[parent], ix[parent], v[i], ix[i])) break;
            (v[parent], v[i]) = (v[i], v[parent]);
            (ix[parent], ix[i]) = (ix[i], ix[parent]);
            i = parent;
        }
    }

    private static void SiftDown(float* v, long* ix, int i, int n)
    {
        while (true)
        {
            int l = 2 * i + 1, worst = i;
            if (l < n && Before(v[worst], ix[worst], v[l], ix[l])) worst = l;
            if (l + 1 < n && Before(v[worst], ix[worst], v[l + 1], ix[l + 1])) worst = l + 1;
            if (worst == i) return;
            (v[worst], v[i]) = (v[i], v[worst]);
            (ix[worst], ix[i]) = (ix[i], ix[worst]);
            i = worst;
        }
    }
}
