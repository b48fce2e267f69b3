// Source: the DeepSeek-V3 router and grouped experts (arXiv:2412.19437 §2.1.2; official inference/model.py Gate and
//         MoE).
using System.Numerics;
using System.Runtime.InteropServices;
using NativeReasoner.Kernels.Reference;

namespace NativeReasoner.Kernels.Cuda;

// Mixture-of-experts routing and permutation (kernels/cuda/moe.cu), index-driven copies and accumulations
// (kernels/cuda/index.cu) and top-k along rows (kernels/cuda/topk.cu). The designs are described at the top
// of each .cu file; this side picks the path and the launch shape for the sizes at hand.
public sealed unsafe partial class CudaKernels
{
    /// <summary>Threads per block of the row kernels (dispatch, combine, indexing).</summary>
    private const int RowBlock = 256;

    /// <summary>Slots up to which MoePermute runs its three phases in one block (one launch).</summary>
    internal const int PermuteFusedSlots = 4096;

    /// <summary>Chunks of the multi-launch MoePermute (at most): bounds the one-block scan to E·256 counts.</summary>
    private const int PermuteMaxChunks = 256;

    /// <summary>Rows up to this length are sorted whole in shared memory by TopK.</summary>
    internal const int TopKSortCols = 4096;

    /// <summary>Largest k of TopK's radix-select path; beyond it (on rows longer than <see cref="TopKSortCols"/>) the merge sort.</summary>
    internal const int TopKSelectMaxK = 2048;

    /// <summary>Chunk of TopK's merge-sort path (sorted by one block in shared memory).</summary>
    private const int TopKChunk = 2048;

    /// <summary>Same layout as nr_moe_route_args in moe.cu.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct MoeRouteArgs
    {
        public int Experts, Groups, TopkGroups, K, UseBias, Normalize;
        public float Scale;
    }

    /// <summary>Same layout as nr_moe_permute_args in moe.cu.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct MoePermuteArgs
    {
        public int Slots, Experts, Bits, GroupsPerChunk, Chunks;
    }

    /// <summary>Same layout as nr_row_split in moe.cuh: lanes per row, pieces per row, columns per piece.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct RowSplit
    {
        public int Lanes, Splits, Span;
    }

    private static bool Aligned16(void* a, void* b) => (((nint)a | (nint)b) & 15) == 0;

    /// <summary>Lanes per row of a row kernel: the row length rounded up to a power of two, at most the block.</summary>
    private static int RowLanes(int width) => (int)Math.Min(RowBlock, BitOperations.RoundUpToPowerOf2((uint)Math.Max(1, width)));

    /// <summary>Blocks of a row kernel over <paramref name="rows"/> rows of <paramref name="lanes"/> lanes each.</summary>
    private uint RowGrid(long rows, int lanes) => GridFor(rows * lanes, RowBlock);

    /// <summary>
    /// The lanes per row and, when the rows alone would fill fewer than two blocks per SM, the pieces each row
    /// is cut into (at least a block's width of columns each), so a decode step's single token still spreads
    /// over the device.
    /// </summary>
    private RowSplit SplitRows(long rows, int width)
    {
        int lanes = RowLanes(width);
        long blocks = (rows * lanes + RowBlock - 1) / RowBlock, target = 2L * _backend.MultiprocessorCount;
        int splits = 1;
        if (blocks < target && width > lanes)
            splits = (int)Math.Min((width + lanes - 1) / lanes, (target + blocks - 1) / blocks);
        int span = (width + splits - 1) / splits;
        return new RowSplit { Lanes = lanes, Splits = (width + span - 1) / span, Span = span };
    }

    // ---------------------------------------------------------------- router

    public void MoeRoute(float* scores, float* bias, int n, int experts, int groups, int topkGroups, int k, bool useBias,
        float* selection, int* indices, float* weights, bool normalize, float scale)
    {
        ReferenceKernels.CheckRouteArgs(n, experts, groups, topkGroups, k);
        if (useBias && bias == null) throw new ArgumentNullException(nameof(bias), "useBias needs the correction bias");
        if (n == 0) return;
        // One warp per token; each warp's slice of shared memory: selection row, group scores and flags, picks.
        int warpBytes = checked((experts + 2 * groups + 2 * k) * sizeof(float));
        int warps = Math.Clamp(48 * 1024 / warpBytes, 1, 4);
        var args = new MoeRouteArgs
        {
            Experts = experts, Groups = groups, TopkGroups = topkGroups, K = k,
            UseBias = useBias ? 1 : 0, Normalize = normalize ? 1 : 0, Scale = scale,
        };
        void** a = stackalloc void*[7];
        a[0] = &scores;
        a[1] = &bias;
        a[2] = &selection;
        a[3] = &indices;
        a[4] = &weights;
        a[5] = &n;
        a[6] = &args;
        uint grid = (uint)Math.Min((n + warps - 1) / warps, (long)_backend.MultiprocessorCount * 16);
        Launch("moe.cu", "nr_moe_route", grid, (uint)(warps * 32), warps * warpBytes, a);
    }

    // ---------------------------------------------------------------- permutation

    public void MoePermute(int* indices, int n, int k, int experts, int* expertOffsets, int* slotOrder, int* slotPosition)
    {
        if (experts < 1) throw new ArgumentOutOfRangeException(nameof(experts), experts, "must be ≥ 1");
        int slots = checked(n * k);
        if (slots == 0)
        {
            _backend.Memory.Clear((byte*)expertOffsets, (experts + 1L) * sizeof(int));
            return;
        }
        // Each warp keeps E counters in shared memory.
        long histBytes = (long)experts * sizeof(int);
        if (histBytes > _backend.MaxSharedMemoryPerBlockOptin)
            throw new NotSupportedException($"MoePermute keeps a counter per expert in shared memory: {experts} experts do not fit");
        bool fused = slots <= PermuteFusedSlots;
        int warps = (int)Math.Clamp(48 * 1024 / histBytes, 1, fused ? 32 : 8);
        // Chunks of 32·G consecutive slots, one warp each: in one block, at most one chunk a warp; otherwise at
        // most PermuteMaxChunks chunks (the scan over [E, chunks] is one block) of at least 4 groups.
        int groupsPerChunk = fused
            ? Math.Max(1, (slots + 32 * warps - 1) / (32 * warps))
            : Math.Max(4, (int)((slots + 32L * PermuteMaxChunks - 1) / (32L * PermuteMaxChunks)));
        int chunkSlots = 32 * groupsPerChunk;
        int chunks = (slots + chunkSlots - 1) / chunkSlots;
        long countCells = (long)experts * chunks;
        if (countCells > int.MaxValue) throw new NotSupportedException($"MoePermute: {experts} experts × {chunks} chunks of counts");
        var args = new MoePermuteArgs
        {
            Slots = slots, Experts = experts, GroupsPerChunk = groupsPerChunk, Chunks = chunks,
            Bits = 32 - BitOperations.LeadingZeroCount((uint)experts), // enough for the value E ("no expert")
        };
        int shared = (int)(warps * histBytes);
        // counts: [E, chunks], the per-chunk histograms expert-major, scanned in place into start positions.
        var counts = Scratch(countCells * sizeof(int));
        try
        {
            int* c = (int*)counts.Pointer;
            void** a = stackalloc void*[6];
            if (fused)
            {
                a[0] = &indices;
                a[1] = &c;
                a[2] = &expertOffsets;
                a[3] = &slotOrder;
                a[4] = &slotPosition;
                a[5] = &args;
                Launch("moe.cu", "nr_moe_permute_fused", 1, (uint)(warps * 32), shared, a);
                return;
            }
            uint grid = (uint)((chunks + warps - 1) / warps);
            a[0] = &indices;
            a[1] = &c;
            a[2] = &args;
            Launch("moe.cu", "nr_moe_permute_count", grid, (uint)(warps * 32), shared, a);
            a[0] = &c;
            a[1] = &expertOffsets;
            a[2] = &args;
            Launch("moe.cu", "nr_moe_permute_scan", 1, 1024, 0, a);
            a[0] = &indices;
            a[1] = &c;
            a[2] = &slotOrder;
            a[3] = &slotPosition;
            a[4] = &args;
            Launch("moe.cu", "nr_moe_permute_scatter", grid, (uint)(warps * 32), shared, a);
        }
        finally
        {
            counts.Release(); // stream-ordered: the launches above are queued before any reuse
        }
    }

    // ---------------------------------------------------------------- dispatch / combine

    public void MoeDispatch(float* x, int* slotPosition, float* weights, int n, int k, int d, float* y)
    {
        long slots = (long)n * k;
        if (slots == 0 || d == 0) return;
        bool vec = d % 4 == 0 && Aligned16(x, y);
        int width = vec ? d / 4 : d;
        var rs = SplitRows(slots, width);
        void** a = stackalloc void*[8];
        a[0] = &x;
        a[1] = &slotPosition;
        a[2] = &weights;
        a[3] = &y;
        a[4] = &n;
        a[5] = &k;
        a[6] = &width;
        a[7] = &rs;
        Launch("moe.cu", vec ? "nr_moe_dispatch_f32x4" : "nr_moe_dispatch_f32", RowGrid(slots * rs.Splits, rs.Lanes), RowBlock, 0, a);
    }

    public void MoeCombine(float* src, int* slotPosition, float* weights, int n, int k, int d, float* y)
    {
        if ((long)n * d == 0) return;
        bool vec = d % 4 == 0 && Aligned16(src, y);
        int width = vec ? d / 4 : d;
        var rs = SplitRows(n, width);
        void** a = stackalloc void*[8];
        a[0] = &src;
        a[1] = &slotPosition;
        a[2] = &weights;
        a[3] = &y;
        a[4] = &n;
        a[5] = &k;
        a[6] = &width;
        a[7] = &rs;
        Launch("moe.cu", vec ? "nr_moe_combine_f32x4" : "nr_moe_combine_f32", RowGrid((long)n * rs.Splits, rs.Lanes), RowBlock, 0, a);
    }

    public void MoeCombineWeightGrad(float* dy, float* src, int* slotPosition, int n, int k, int d, float* dw)
    {
        long slots = (long)n * k;
        if (slots == 0) return;
        bool vec = d % 4 == 0 && Aligned16(dy, src);
        int width = vec ? d / 4 : d;
        void** a = stackalloc void*[7];
        a[0] = &dy;
        a[1] = &src;
        a[2] = &slotPosition;
        a[3] = &dw;
        a[4] = &n;
        a[5] = &k;
        a[6] = &width;
        // One warp per slot; one-warp blocks when the slots are few (decode), so they land on different SMs.
        int block = slots >= 8L * _backend.MultiprocessorCount ? RowBlock : 32;
        Launch("moe.cu", vec ? "nr_moe_weight_grad_f32x4" : "nr_moe_weight_grad_f32", GridFor(slots * 32, block), (uint)block, 0, a);
    }

    // ---------------------------------------------------------------- indexing

    public void IndexSelect(float* x, long* idx, float* y, int outer, int dimIn, int n, int inner)
    {
        long rows = (long)outer * n;
        if (rows == 0 || inner == 0) return;
        bool vec = inner % 4 == 0 && Aligned16(x, y);
        int width = vec ? inner / 4 : inner;
        var rs = SplitRows(rows, width);
        void** a = stackalloc void*[8];
        a[0] = &x;
        a[1] = &idx;
        a[2] = &y;
        a[3] = &outer;
        a[4] = &dimIn;
        a[5] = &n;
        a[6] = &width;
        a[7] = &rs;
        Launch("index.cu", vec ? "nr_index_select_f32x4" : "nr_index_select_f32", RowGrid(rows * rs.Splits, rs.Lanes), RowBlock, 0, a);
    }

    public void IndexAdd(float* src, long* idx, float* dst, int outer, int n, int dimDst, int inner) =>
        IndexRows("nr_index_add_f32", src, idx, dst, outer, n, dimDst, inner, (long)outer * n);

    public void Gather(float* x, long* idx, float* y, int outer, int dimIn, int dimOut, int inner) =>
        IndexRows("nr_index_gather_f32", x, idx, y, outer, dimIn, dimOut, inner, (long)outer * dimOut);

    public void ScatterAdd(float* src, long* idx, float* dst, int outer, int dimSrc, int dimDst, int inner) =>
        IndexRows("nr_index_scatter_add_f32", src, idx, dst, outer, dimSrc, dimDst, inner, (long)outer * dimSrc);

    /// <summary>A row kernel of index.cu with the parameters (from, idx, to, outer, dimA, dimB, inner, lanes).</summary>
    private void IndexRows(string kernel, float* from, long* idx, float* to, int outer, int dimA, int dimB, int inner, long rows)
    {
        if (rows == 0 || inner == 0) return;
        int lanes = RowLanes(inner);
        void** a = stackalloc void*[8];
        a[0] = &from;
        a[1] = &idx;
        a[2] = &to;
        a[3] = &outer;
        a[4] = &dimA;
        a[5] = &dimB;
        a[6] = &inner;
        a[7] = &lanes;
        Launch("index.cu", kernel, RowGrid(rows, lanes), RowBlock, 0, a);
    }

    // ---------------------------------------------------------------- top-k

    public void TopK(float* x, float* values, long* indices, int rows, int cols, int k)
    {
        if (k < 0 || k > cols) throw new ArgumentOutOfRangeException(nameof(k), k, "must be in [0, cols]");
        if ((long)rows * k == 0) return;
        void** a = stackalloc void*[10];
        a[0] = &x;
        a[1] = &values;
        a[2] = &indices;
        a[3] = &rows;
        a[4] = &cols;
        a[5] = &k;
        int sms = _backend.MultiprocessorCount;
        if (cols <= TopKSortCols)
        {
            // The whole row in shared memory, bitonic-sorted; a thread per 8 words (one warp for a router row).
            int p = (int)BitOperations.RoundUpToPowerOf2((uint)cols);
            a[6] = &p;
            Launch("topk.cu", "nr_topk_sort_rows", (uint)Math.Min(rows, sms * 16), (uint)Math.Clamp(p / 8, 32, 1024), BitonicBytes(p), a);
            return;
        }
        if (k <= TopKSelectMaxK)
        {
            // Radix select of the k-th key, then the k survivors sorted in shared memory.
            int pk = (int)BitOperations.RoundUpToPowerOf2((uint)k);
            a[6] = &pk;
            Launch("topk.cu", "nr_topk_select_rows", (uint)Math.Min(rows, sms * 4), 1024, BitonicBytes(pk), a);
            return;
        }
        TopKMergeSort(x, values, indices, rows, cols, k);
    }

    /// <summary>Shared memory of a bitonic sort of n words in topk.cu (a padding word after every 8).</summary>
    private static int BitonicBytes(int n) => (n + n / 8) * sizeof(ulong);

    /// <summary>TopK's path for long rows and large k: chunks sorted in shared memory, then merged pairwise.</summary>
    private void TopKMergeSort(float* x, float* values, long* indices, int rows, int cols, int k)
    {
        long words = (long)rows * cols;
        var bufA = Scratch(words * sizeof(ulong));
        var bufB = Scratch(words * sizeof(ulong));
        try
        {
            ulong* src = (ulong*)bufA.Pointer, dst = (ulong*)bufB.Pointer;
            int chunk = TopKChunk;
            void** a = stackalloc void*[10];
            a[0] = &x;
            a[1] = &src;
            a[2] = &rows;
            a[3] = &cols;
            a[4] = &chunk;
            long blocks = (long)rows * ((cols + chunk - 1) / chunk);
            Launch("topk.cu", "nr_topk_chunk_sort", (uint)Math.Min(blocks, _backend.MultiprocessorCount * 8L), (uint)(chunk / 8), BitonicBytes(chunk), a);
            // cols > TopKSortCols ≥ 2·chunk: at least one merge level.
            for (int run = chunk; run < cols; run *= 2)
            {
                int last = 2L * run >= cols ? 1 : 0;
                a[0] = &src;
                a[1] = &dst;
                a[2] = &x;
                a[3] = &values;
                a[4] = &indices;
                a[5] = &rows;
                a[6] = &cols;
                a[7] = &run;
                a[8] = &k;
                a[9] = &last;
                Launch("topk.cu", "nr_topk_merge", GridFor(words), ElementwiseBlock, 0, a);
                ulong* swap = src;
                src = dst;
                dst = swap;
            }
        }
        finally
        {
            bufA.Release();
            bufB.Release();
        }
    }
}
