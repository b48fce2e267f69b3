// Source: PyTorch's broadcasting and strided-tensor semantics (elementwise ops, Tensor.copy_).
namespace NativeReasoner.Kernels.Cpu;

/// <summary>
/// A rank ≤ 8 strided iteration over up to four operands that share one shape, reduced to rows of a
/// contiguous-or-broadcast innermost axis. Size-1 axes are dropped and adjacent axes that are contiguous with
/// each other in every operand are merged, so a plain contiguous tensor becomes one long row. Rows (split into
/// blocks when a row is long) are spread over <see cref="CpuParallel"/>; each piece is handed to
/// <see cref="Segment"/> with the element offsets of every operand at its start.
/// Lives on the caller's stack; nothing is allocated.
/// </summary>
internal unsafe struct StridedPlan
{
    public const int MaxRank = 8;
    public const int MaxOps = 4;

    /// <summary>Longest piece of a row handed to one Segment call (keeps long rows splittable across threads).</summary>
    private const int RowBlock = 1 << 14;

    public int Rank;
    public int NOps;
    public fixed int Shape[MaxRank];
    public fixed long Strides[MaxRank * MaxOps]; // [op * MaxRank + axis], in elements
    public fixed long Base[MaxOps];              // operand start addresses

    /// <summary>Kernel-specific parameters read by the segment function.</summary>
    public int Op;
    public int ElementSize;

    /// <summary>Processes <c>len</c> elements of the innermost axis; <c>off[op]</c> is the element offset of operand op.</summary>
    public delegate*<StridedPlan*, long*, int, void> Segment;

    private long _rows;
    private long _blocksPerRow;
    private int _blockLen;

    public readonly int Inner => Shape[Rank - 1];
    public readonly long InnerStride(int op) => Strides[op * MaxRank + Rank - 1];

    /// <summary>
    /// Fills the plan from a shape and per-operand strides (null span = contiguous row-major for that shape).
    /// Returns false when the shape has no elements.
    /// </summary>
    public static bool Init(StridedPlan* p, ReadOnlySpan<int> shape, int nOps,
        ReadOnlySpan<long> s0, ReadOnlySpan<long> s1, ReadOnlySpan<long> s2, ReadOnlySpan<long> s3,
        bool contiguous0, bool contiguous1, bool contiguous2, bool contiguous3)
    {
        int rank = shape.Length;
        if (rank > MaxRank) throw new ArgumentException("rank must be ≤ 8", nameof(shape));
        p->NOps = nOps;
        long* raw = stackalloc long[MaxRank * MaxOps];
        for (int op = 0; op < nOps; op++)
        {
            ReadOnlySpan<long> s = op switch { 0 => s0, 1 => s1, 2 => s2, _ => s3 };
            bool contiguous = op switch { 0 => contiguous0, 1 => contiguous1, 2 => contiguous2, _ => contiguous3 };
            if (contiguous)
            {
                long st = 1;
                for (int a = rank - 1; a >= 0; a--) { raw[op * MaxRank + a] = st; st *= shape[a]; }
            }
            else
            {
                if (s.Length != rank) throw new ArgumentException("stride count must equal rank");
                for (int a = 0; a < rank; a++) raw[op * MaxRank + a] = s[a];
            }
        }

        // Drop size-1 axes and merge an axis into the previous kept one when, for every operand,
        // stride[prev] == stride[a] · shape[a] (the two axes walk memory as one).
        int r = 0;
        for (int a = 0; a < rank; a++)
        {
            int n = shape[a];
            if (n < 0) throw new ArgumentOutOfRangeException(nameof(shape), "negative dimension");
            if (n == 0) return false;
            if (n == 1) continue;
            bool merge = r > 0 && (long)p->Shape[r - 1] * n <= int.MaxValue;
            for (int op = 0; op < nOps && merge; op++)
                merge = p->Strides[op * MaxRank + r - 1] == raw[op * MaxRank + a] * n;
            if (merge)
            {
                p->Shape[r - 1] *= n;
                for (int op = 0; op < nOps; op++) p->Strides[op * MaxRank + r - 1] = raw[op * MaxRank + a];
            }
            else
            {
                p->Shape[r] = n;
                for (int op = 0; op < nOps; op++) p->Strides[op * MaxRank + r] = raw[op * MaxRank + a];
                r++;
            }
        }
        if (r == 0)
        {
            // A single element (rank 0 or all dims 1).
            p->Shape[0] = 1;
            for (int op = 0; op < nOps; op++) p->Strides[op * MaxRank] = 0;
            r = 1;
        }
        p->Rank = r;
        return true;
    }

    /// <summary>True when some operand has stride 0 on an axis (after merging), i.e. it is broadcast/reduced.</summary>
    public static bool HasZeroStride(StridedPlan* p, int op)
    {
        for (int a = 0; a < p->Rank; a++)
            if (p->Strides[op * MaxRank + a] == 0) return true;
        return false;
    }

    /// <summary>Runs Segment over the whole shape, row-major; pieces go to the pool when there is enough work.</summary>
    public static void Run(StridedPlan* p, long minElementsPerTask)
    {
        int inner = p->Inner;
        long rows = 1;
        for (int a = 0; a < p->Rank - 1; a++) rows *= p->Shape[a];
        p->_rows = rows;
        p->_blockLen = Math.Min(inner, RowBlock);
        p->_blocksPerRow = (inner + p->_blockLen - 1) / p->_blockLen;
        long units = rows * p->_blocksPerRow;
        long minUnits = Math.Max(1, minElementsPerTask / p->_blockLen);
        CpuParallel.For(units, minUnits, &RowMajorBody, p);
    }

    private static void RowMajorBody(void* state, long start, long end)
    {
        var p = (StridedPlan*)state;
        int rank = p->Rank, nOps = p->NOps, inner = p->Inner, blockLen = p->_blockLen;
        long bpr = p->_blocksPerRow;
        int* idx = stackalloc int[MaxRank];
        long* off = stackalloc long[MaxOps];
        long* seg = stackalloc long[MaxOps];

        long row = start / bpr, blk = start % bpr;
        long rem = row;
        for (int a = rank - 2; a >= 0; a--) { idx[a] = (int)(rem % p->Shape[a]); rem /= p->Shape[a]; }
        for (int op = 0; op < nOps; op++)
        {
            long o = 0;
            for (int a = 0; a < rank - 1; a++) o += idx[a] * p->Strides[op * MaxRank + a];
            off[op] = o;
        }

        long u = start;
        while (true)
        {
            long cnt = Math.Min(bpr - blk, end - u);
            long i0 = blk * blockLen, i1 = Math.Min(inner, (blk + cnt) * blockLen);
            for (int op = 0; op < nOps; op++) seg[op] = off[op] + i0 * p->Strides[op * MaxRank + rank - 1];
            p->Segment(p, seg, (int)(i1 - i0));
            u += cnt;
            blk = 0;
            if (u >= end) break;
            Advance(p, idx, off, rank - 2);
        }
    }

    /// <summary>Odometer step over axes [0, lastAxis], keeping the operand offsets in sync.</summary>
    private static void Advance(StridedPlan* p, int* idx, long* off, int lastAxis)
    {
        int nOps = p->NOps;
        for (int a = lastAxis; a >= 0; a--)
        {
            idx[a]++;
            for (int op = 0; op < nOps; op++) off[op] += p->Strides[op * MaxRank + a];
            if (idx[a] < p->Shape[a]) return;
            for (int op = 0; op < nOps; op++) off[op] -= p->Strides[op * MaxRank + a] * p->Shape[a];
            idx[a] = 0;
        }
    }

    /// <summary>
    /// Like <see cref="Run"/> but parallel over blocks of the innermost axis only: each task walks every row for
    /// its own columns. Used when rows write into the same destination (a reduction over outer axes), so that
    /// no two tasks ever touch the same destination element.
    /// </summary>
    public static void RunColumnBlocks(StridedPlan* p, long minElementsPerTask)
    {
        int inner = p->Inner;
        long rows = 1;
        for (int a = 0; a < p->Rank - 1; a++) rows *= p->Shape[a];
        p->_rows = rows;
        // Blocks of a few cache lines; a task must carry enough rows·columns to be worth handing off.
        p->_blockLen = Math.Min(inner, 256);
        p->_blocksPerRow = (inner + p->_blockLen - 1) / p->_blockLen;
        long minUnits = Math.Max(1, minElementsPerTask / Math.Max(1, rows * p->_blockLen));
        CpuParallel.For(p->_blocksPerRow, minUnits, &ColumnBlockBody, p);
    }

    private static void ColumnBlockBody(void* state, long start, long end)
    {
        var p = (StridedPlan*)state;
        int rank = p->Rank, nOps = p->NOps, inner = p->Inner;
        int i0 = (int)(start * p->_blockLen), i1 = (int)Math.Min(inner, end * p->_blockLen);
        int* idx = stackalloc int[MaxRank];
        long* off = stackalloc long[MaxOps];
        long* seg = stackalloc long[MaxOps];
        for (int a = 0; a < MaxRank; a++) idx[a] = 0;
        for (int op = 0; op < nOps; op++) off[op] = 0;
        for (long row = 0; row < p->_rows; row++)
        {
            for (int op = 0; op < nOps; op++) seg[op] = off[op] + i0 * p->Strides[op * MaxRank + rank - 1];
            p->Segment(p, seg, i1 - i0);
            Advance(p, idx, off, rank - 2);
        }
    }
}
