// Source: PyTorch's broadcasting and strided-tensor semantics (elementwise ops, Tensor.copy_).
using System.Runtime.InteropServices;

namespace NativeReasoner.Kernels.Cuda;

// Memory, conversions, elementwise, broadcast, reductions and optimizers: the host side of
// kernels/cuda/elementwise.cu, convert.cu, reduce.cu and optim.cu. The host's job here is planning: collapse
// each broadcast layout (drop size-1 axes, merge axes that walk memory as one) so the kernels see the fewest
// axes, pick the flat/vectorised kernel when every pointer allows it, and size grids and reduction splits.
public sealed unsafe partial class CudaKernels
{
    private const string EwFile = "elementwise.cu";
    private const string ConvertFile = "convert.cu";
    private const string ReduceFile = "reduce.cu";
    private const string OptimFile = "optim.cu";
    private const int MaxRank = 8;

    /// <summary>Kernel-parameter twin of NrLayout (kernels/cuda/elementwise.cuh): 232 bytes, same offsets.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct EwLayout
    {
        public int Rank;
        public fixed int Shape[MaxRank];
        public fixed long Stride[3 * MaxRank]; // [operand · 8 + axis], elements
    }

    /// <summary>Kernel-parameter twin of NrRedLayout (kernels/cuda/reduce.cu): 264 bytes, same offsets.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct RedLayout
    {
        public int KeptRank, RedRank;
        public fixed int KeptShape[MaxRank];
        public fixed int RedShape[MaxRank];
        public fixed long KeptSrc[MaxRank];
        public fixed long KeptDst[MaxRank];
        public fixed long RedSrc[MaxRank];
    }

    /// <summary>Kernel twin of NrAdamTensor (kernels/cuda/optim.cu): one row of the multi-tensor AdamW table.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct AdamTensor
    {
        public float* P, G, M, V;
        public long N, FirstChunk;
    }

    /// <summary>Elements per chunk of the multi-tensor AdamW (NR_ADAM_CHUNK in optim.cu).</summary>
    private const int AdamChunk = 16384;

    private static bool Aligned16(void* p) => ((nint)p & 15) == 0;

    /// <summary>Grid for a vectorised flat kernel: one thread per 4 elements when vec.</summary>
    private uint FlatGrid(long n, bool vec) => GridFor(vec ? (n + 3) / 4 : n);

    /// <summary>
    /// Collapses a broadcast layout of <paramref name="ops"/> strided operands (plus, implicitly, a contiguous
    /// one, which is consistent with every merge): size-1 axes dropped, axis a merged into the previous kept
    /// axis when every operand has stride[prev] = stride[a]·shape[a]. False when the shape has no elements.
    /// The result has rank ≥ 1 (a single element is shape [1], strides 0).
    /// </summary>
    private static bool Collapse(ReadOnlySpan<int> shape, int ops, ReadOnlySpan<long> s0, ReadOnlySpan<long> s1,
        ReadOnlySpan<long> s2, out EwLayout layout, out long total)
    {
        int rank = shape.Length;
        if (rank > MaxRank) throw new ArgumentException("rank must be ≤ 8", nameof(shape));
        if (s0.Length != rank || (ops > 1 && s1.Length != rank) || (ops > 2 && s2.Length != rank))
            throw new ArgumentException("stride count must equal rank");
        layout = default;
        total = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentOutOfRangeException(nameof(shape), "negative dimension");
            total *= d;
        }
        if (total == 0) return false;
        int r = 0;
        for (int a = 0; a < rank; a++)
        {
            int n = shape[a];
            if (n == 1) continue;
            bool merge = r > 0 && (long)layout.Shape[r - 1] * n <= int.MaxValue;
            for (int k = 0; k < ops && merge; k++)
            {
                long sa = k == 0 ? s0[a] : k == 1 ? s1[a] : s2[a];
                merge = layout.Stride[k * MaxRank + r - 1] == sa * n;
            }
            int slot = merge ? r - 1 : r++;
            layout.Shape[slot] = merge ? layout.Shape[slot] * n : n;
            for (int k = 0; k < ops; k++) layout.Stride[k * MaxRank + slot] = k == 0 ? s0[a] : k == 1 ? s1[a] : s2[a];
        }
        if (r == 0)
        {
            layout.Shape[0] = 1;
            r = 1;
        }
        layout.Rank = r;
        return true;
    }

    /// <summary>Rank 1 and every one of the first <paramref name="ops"/> strides 0 or 1: a flat kernel applies.</summary>
    private static bool IsFlat(in EwLayout l, int ops)
    {
        if (l.Rank != 1) return false;
        for (int k = 0; k < ops; k++)
            if (l.Stride[k * MaxRank] is not (0 or 1)) return false;
        return true;
    }

    // ---------------------------------------------------------------- memory

    public void StridedCopy(byte* src, ReadOnlySpan<long> srcStrides, byte* dst, ReadOnlySpan<long> dstStrides,
        ReadOnlySpan<int> shape, int elementSize)
    {
        if (elementSize is not (1 or 2 or 4 or 8))
            throw new ArgumentOutOfRangeException(nameof(elementSize), elementSize, "must be 1, 2, 4 or 8");
        if (!Collapse(shape, 2, srcStrides, dstStrides, default, out var l, out long n)) return;
        if (l.Rank == 1 && l.Stride[0] == 1 && l.Stride[MaxRank] == 1)
        {
            // Both contiguous: the copy engine (stream-ordered like a launch).
            _backend.Memory.Copy(src, dst, n * elementSize);
            return;
        }
        if (l.Rank >= 2 && TryTransposeCopy(src, dst, in l, elementSize)) return;
        int wide = n > uint.MaxValue ? 1 : 0;
        void** a = stackalloc void*[6];
        a[0] = &src;
        a[1] = &dst;
        a[2] = &l;
        a[3] = &n;
        a[4] = &elementSize;
        a[5] = &wide;
        Launch(EwFile, "nr_ew_strided_copy", GridFor(n), ElementwiseBlock, 0, a);
    }

    /// <summary>
    /// The tiled path of <see cref="StridedCopy"/>: the source is contiguous along axis A and the destination
    /// along another axis B (both long enough to fill a 32-wide tile); the other axes become a batch.
    /// </summary>
    private bool TryTransposeCopy(byte* src, byte* dst, in EwLayout l, int elementSize)
    {
        int axisA = -1, axisB = -1;
        for (int ax = 0; ax < l.Rank; ax++)
        {
            if (l.Stride[ax] == 1 && axisA < 0) axisA = ax;
            if (l.Stride[MaxRank + ax] == 1 && axisB < 0) axisB = ax;
        }
        if (axisA < 0 || axisB < 0 || axisA == axisB || l.Shape[axisA] < 16 || l.Shape[axisB] < 16) return false;
        EwLayout batch = default;
        int r = 0;
        long nBatch = 1;
        for (int ax = 0; ax < l.Rank; ax++)
        {
            if (ax == axisA || ax == axisB) continue;
            batch.Shape[r] = l.Shape[ax];
            batch.Stride[r] = l.Stride[ax];
            batch.Stride[MaxRank + r] = l.Stride[MaxRank + ax];
            nBatch *= l.Shape[ax];
            r++;
        }
        if (r == 0) batch.Shape[r++] = 1;
        batch.Rank = r;
        int nA = l.Shape[axisA], nB = l.Shape[axisB];
        long sA = l.Stride[axisA], sB = l.Stride[axisB], dA = l.Stride[MaxRank + axisA], dB = l.Stride[MaxRank + axisB];
        long tiles = (nA + 31L) / 32 * ((nB + 31L) / 32) * nBatch;
        uint grid = (uint)Math.Min(tiles, (long)_backend.MultiprocessorCount * 16);
        void** a = stackalloc void*[11];
        a[0] = &src;
        a[1] = &dst;
        a[2] = &batch;
        a[3] = &nBatch;
        a[4] = &nA;
        a[5] = &nB;
        a[6] = &sA;
        a[7] = &sB;
        a[8] = &dA;
        a[9] = &dB;
        a[10] = &elementSize;
        Launch(EwFile, "nr_ew_transpose_copy", grid, 256, 0, a);
        return true;
    }

    // ---------------------------------------------------------------- conversions

    private void LaunchConvert(string kernel, void* x, void* y, long n, bool vec)
    {
        if (n <= 0) return;
        int v = vec ? 1 : 0;
        void** a = stackalloc void*[4];
        a[0] = &x;
        a[1] = &y;
        a[2] = &n;
        a[3] = &v;
        Launch(ConvertFile, kernel, FlatGrid(n, vec), ElementwiseBlock, 0, a);
    }

    // A vectorised 16-bit side moves 8 bytes (4 × ushort) per access, so it needs 8-byte alignment.
    private static bool Aligned8(void* p) => ((nint)p & 7) == 0;

    public void FloatToBFloat16(float* x, ushort* y, long n) =>
        LaunchConvert("nr_cvt_f32_to_bf16", x, y, n, Aligned16(x) && Aligned8(y));

    public void BFloat16ToFloat(ushort* x, float* y, long n) =>
        LaunchConvert("nr_cvt_bf16_to_f32", x, y, n, Aligned8(x) && Aligned16(y));

    public void FloatToHalf(float* x, ushort* y, long n) =>
        LaunchConvert("nr_cvt_f32_to_f16", x, y, n, Aligned16(x) && Aligned8(y));

    public void HalfToFloat(ushort* x, float* y, long n) =>
        LaunchConvert("nr_cvt_f16_to_f32", x, y, n, Aligned8(x) && Aligned16(y));

    private void LaunchIdConvert(string kernel, void* x, void* y, long n)
    {
        if (n <= 0) return;
        void** a = stackalloc void*[3];
        a[0] = &x;
        a[1] = &y;
        a[2] = &n;
        Launch(ConvertFile, kernel, GridFor(n), ElementwiseBlock, 0, a);
    }

    public void Int64ToFloat(long* x, float* y, long n) => LaunchIdConvert("nr_cvt_i64_to_f32", x, y, n);

    public void FloatToInt64(float* x, long* y, long n) => LaunchIdConvert("nr_cvt_f32_to_i64", x, y, n);

    public void Int32ToInt64(int* x, long* y, long n) => LaunchIdConvert("nr_cvt_i32_to_i64", x, y, n);

    public void Int64ToInt32(long* x, int* y, long n) => LaunchIdConvert("nr_cvt_i64_to_i32", x, y, n);

    // ---------------------------------------------------------------- elementwise

    public void Unary(UnaryOp op, float* x, float* y, long n, float alpha)
    {
        if (n <= 0) return;
        if ((uint)op > (uint)UnaryOp.Abs) throw new ArgumentOutOfRangeException(nameof(op), op, null);
        int o = (int)op, vec = Aligned16(x) && Aligned16(y) ? 1 : 0;
        void** a = stackalloc void*[6];
        a[0] = &o;
        a[1] = &x;
        a[2] = &y;
        a[3] = &n;
        a[4] = &alpha;
        a[5] = &vec;
        Launch(EwFile, "nr_ew_unary", FlatGrid(n, vec != 0), ElementwiseBlock, 0, a);
    }

    public void UnaryBackward(UnaryOp op, float* x, float* y, float* dy, float* dx, long n, float alpha)
    {
        if (n <= 0) return;
        if ((uint)op > (uint)UnaryOp.Abs) throw new ArgumentOutOfRangeException(nameof(op), op, null);
        int o = (int)op, vec = Aligned16(x) && Aligned16(y) && Aligned16(dy) && Aligned16(dx) ? 1 : 0;
        void** a = stackalloc void*[8];
        a[0] = &o;
        a[1] = &x;
        a[2] = &y;
        a[3] = &dy;
        a[4] = &dx;
        a[5] = &n;
        a[6] = &alpha;
        a[7] = &vec;
        Launch(EwFile, "nr_ew_unary_backward", FlatGrid(n, vec != 0), ElementwiseBlock, 0, a);
    }

    public void Binary(BinaryOp op, float* a, ReadOnlySpan<long> aStrides, float* b, ReadOnlySpan<long> bStrides,
        float* c, ReadOnlySpan<int> shape)
    {
        if ((uint)op > (uint)BinaryOp.Minimum) throw new ArgumentOutOfRangeException(nameof(op), op, null);
        if (!Collapse(shape, 2, aStrides, bStrides, default, out var l, out long n)) return;
        int o = (int)op;
        if (IsFlat(l, 2))
        {
            // Contiguous or scalar operands (the common case): float4 when every stride-1 pointer allows it.
            int sa = (int)l.Stride[0], sb = (int)l.Stride[MaxRank];
            int fv = Aligned16(c) && (sa == 0 || Aligned16(a)) && (sb == 0 || Aligned16(b)) ? 1 : 0;
            void** f = stackalloc void*[8];
            f[0] = &o;
            f[1] = &a;
            f[2] = &sa;
            f[3] = &b;
            f[4] = &sb;
            f[5] = &c;
            f[6] = &n;
            f[7] = &fv;
            Launch(EwFile, "nr_ew_binary_flat", FlatGrid(n, fv != 0), ElementwiseBlock, 0, f);
            return;
        }
        int wide = n > uint.MaxValue ? 1 : 0;
        int va = (int)l.Stride[l.Rank - 1], vb = (int)l.Stride[MaxRank + l.Rank - 1];
        int vec = RowsVectorisable(l, a, 0) && RowsVectorisable(l, b, 1) && Aligned16(c) && l.Shape[l.Rank - 1] % 4 == 0 ? 1 : 0;
        void** p = stackalloc void*[10];
        p[0] = &o;
        p[1] = &a;
        p[2] = &b;
        p[3] = &c;
        p[4] = &l;
        p[5] = &n;
        p[6] = &wide;
        p[7] = &vec;
        p[8] = &va;
        p[9] = &vb;
        Launch(EwFile, "nr_ew_binary_strided", FlatGrid(n, vec != 0), ElementwiseBlock, 0, p);
    }

    /// <summary>
    /// Whether operand k can be read 4 outputs at a time along the last axis: stride 0 there (one value
    /// broadcast), or stride 1 with a 16-byte aligned base and every other stride a multiple of 4 (so each
    /// group of 4 starts 16-byte aligned).
    /// </summary>
    private static bool RowsVectorisable(in EwLayout l, float* p, int k)
    {
        long last = l.Stride[k * MaxRank + l.Rank - 1];
        if (last == 0) return true;
        if (last != 1 || !Aligned16(p)) return false;
        for (int ax = 0; ax < l.Rank - 1; ax++)
            if (l.Stride[k * MaxRank + ax] % 4 != 0) return false;
        return true;
    }

    public void Where(float* cond, ReadOnlySpan<long> condStrides, float* a, ReadOnlySpan<long> aStrides,
        float* b, ReadOnlySpan<long> bStrides, float* output, ReadOnlySpan<int> shape)
    {
        if (!Collapse(shape, 3, condStrides, aStrides, bStrides, out var l, out long n)) return;
        if (IsFlat(l, 3))
        {
            int sc = (int)l.Stride[0], sa = (int)l.Stride[MaxRank], sb = (int)l.Stride[2 * MaxRank];
            int vec = Aligned16(output) && (sc == 0 || Aligned16(cond)) && (sa == 0 || Aligned16(a)) && (sb == 0 || Aligned16(b)) ? 1 : 0;
            void** f = stackalloc void*[9];
            f[0] = &cond;
            f[1] = &sc;
            f[2] = &a;
            f[3] = &sa;
            f[4] = &b;
            f[5] = &sb;
            f[6] = &output;
            f[7] = &n;
            f[8] = &vec;
            Launch(EwFile, "nr_ew_where_flat", FlatGrid(n, vec != 0), ElementwiseBlock, 0, f);
            return;
        }
        int wide = n > uint.MaxValue ? 1 : 0;
        void** p = stackalloc void*[7];
        p[0] = &cond;
        p[1] = &a;
        p[2] = &b;
        p[3] = &output;
        p[4] = &l;
        p[5] = &n;
        p[6] = &wide;
        Launch(EwFile, "nr_ew_where_strided", GridFor(n), ElementwiseBlock, 0, p);
    }

    // ---------------------------------------------------------------- reductions

    private const int RedSum = 0, RedMean = 1, RedMax = 2, RedMin = 3, RedAccumulate = 4;

    /// <summary>
    /// Splits a contiguous source of <paramref name="shape"/> into kept axes (dst stride ≠ 0: one output each)
    /// and reduced axes (dst stride 0), after dropping size-1 axes and merging neighbours of the same kind
    /// that walk both source and destination as one. colFast: the innermost source axis is kept (so lanes
    /// should run along outputs). False when kept axes can hit one dst element twice (not injective).
    /// </summary>
    private static bool PlanReduction(ReadOnlySpan<int> shape, ReadOnlySpan<long> dstStrides, out RedLayout l,
        out long nout, out long nred, out bool colFast)
    {
        int rank = shape.Length;
        Span<int> sh = stackalloc int[MaxRank];
        Span<long> ss = stackalloc long[MaxRank], ds = stackalloc long[MaxRank];
        int r = 0;
        long srcStride = 1;
        Span<long> contiguous = stackalloc long[Math.Max(1, rank)];
        for (int a = rank - 1; a >= 0; a--)
        {
            contiguous[a] = srcStride;
            srcStride *= shape[a];
        }
        for (int a = 0; a < rank; a++)
        {
            int n = shape[a];
            if (n == 1) continue;
            long s = contiguous[a], d = dstStrides[a];
            bool merge = r > 0 && (ds[r - 1] == 0) == (d == 0) && (long)sh[r - 1] * n <= int.MaxValue
                         && ss[r - 1] == s * n && ds[r - 1] == d * n;
            if (merge)
            {
                sh[r - 1] *= n;
                ss[r - 1] = s;
                ds[r - 1] = d;
            }
            else
            {
                sh[r] = n;
                ss[r] = s;
                ds[r] = d;
                r++;
            }
        }
        l = default;
        nout = 1;
        nred = 1;
        int k = 0, q = 0;
        for (int a = 0; a < r; a++)
        {
            if (ds[a] != 0)
            {
                l.KeptShape[k] = sh[a];
                l.KeptSrc[k] = ss[a];
                l.KeptDst[k] = ds[a];
                nout *= sh[a];
                k++;
            }
            else
            {
                l.RedShape[q] = sh[a];
                l.RedSrc[q] = ss[a];
                nred *= sh[a];
                q++;
            }
        }
        colFast = r == 0 || ds[r - 1] != 0;
        if (k == 0) l.KeptShape[k++] = 1;
        if (q == 0) l.RedShape[q++] = 1;
        l.KeptRank = k;
        l.RedRank = q;
        // Injective when, with the kept axes sorted by dst stride, each stride clears the extent of the ones
        // below it (the sufficient condition every non-overlapping view meets).
        Span<int> order = stackalloc int[k];
        for (int i = 0; i < k; i++) order[i] = i;
        for (int i = 1; i < k; i++)
            for (int j = i; j > 0 && l.KeptDst[order[j]] < l.KeptDst[order[j - 1]]; j--)
                (order[j], order[j - 1]) = (order[j - 1], order[j]);
        long extent = 0;
        for (int i = 0; i < k; i++)
        {
            int ax = order[i];
            if (l.KeptShape[ax] == 1) continue;
            if (l.KeptDst[ax] <= extent) return false;
            extent += l.KeptDst[ax] * (l.KeptShape[ax] - 1);
        }
        return true;
    }

    private static int Pow2AtLeast(long v, int cap)
    {
        int p = 1;
        while (p < v && p < cap) p <<= 1;
        return p;
    }

    /// <summary>
    /// Runs the reduction planned by <see cref="PlanReduction"/>: block shape (bx outputs × by lanes, by a power
    /// of two), a split of the reduced range over gridDim.y when the outputs alone cannot fill the device, and
    /// the second pass that combines the splits.
    /// </summary>
    private void LaunchReduction(int op, float* x, float* outp, int* arg, RedLayout l, long nout, long nred, bool colFast, float divisor)
    {
        int bx, by;
        if (colFast)
        {
            int bx0 = Pow2AtLeast(nout, 32);
            by = Pow2AtLeast(nred, 256 / bx0);
            bx = Pow2AtLeast(nout, 256 / by);
        }
        else
        {
            by = Pow2AtLeast(nred, 256);
            bx = Pow2AtLeast(nout, 256 / by);
        }
        long blocks = (nout + bx - 1) / bx;
        long target = (long)_backend.MultiprocessorCount * 8;
        long splits = 1;
        if (blocks < target && nred >= by * 32L)
            splits = Math.Max(1, Math.Min((target + blocks - 1) / blocks, nred / (by * 16L)));
        long chunk = (nred + splits - 1) / splits;
        splits = (nred + chunk - 1) / chunk;
        uint gridX = (uint)Math.Min(blocks, (long)_backend.MultiprocessorCount * 32);
        int cf = colFast ? 1 : 0, wide = nout > uint.MaxValue || nred > uint.MaxValue ? 1 : 0;
        bool extreme = op is RedMax or RedMin;
        Memory.NativeBuffer? pv = null, pa = null;
        float* pval = null;
        int* parg = null;
        if (splits > 1)
        {
            pv = Scratch(nout * splits * sizeof(float));
            pval = (float*)pv.Pointer;
            if (extreme)
            {
                pa = Scratch(nout * splits * sizeof(int));
                parg = (int*)pa.Pointer;
            }
        }
        try
        {
            void** a = stackalloc void*[15];
            a[0] = &op;
            a[1] = &x;
            a[2] = &outp;
            a[3] = &arg;
            a[4] = &pval;
            a[5] = &parg;
            a[6] = &l;
            a[7] = &nout;
            a[8] = &nred;
            a[9] = &bx;
            a[10] = &by;
            a[11] = &cf;
            a[12] = &chunk;
            a[13] = &divisor;
            a[14] = &wide;
            Launch(ReduceFile, "nr_red_pass1", gridX, (uint)splits, 1, (uint)(bx * by), 1, 1, 0, a);
            if (splits > 1)
            {
                int s = (int)splits;
                void** b = stackalloc void*[9];
                b[0] = &op;
                b[1] = &outp;
                b[2] = &arg;
                b[3] = &pval;
                b[4] = &parg;
                b[5] = &l;
                b[6] = &nout;
                b[7] = &s;
                b[8] = &divisor;
                Launch(ReduceFile, "nr_red_pass2", GridFor(nout), ElementwiseBlock, 0, b);
            }
        }
        finally
        {
            pv?.Release();
            pa?.Release();
        }
    }

    public void AccumulateStrided(float* src, ReadOnlySpan<int> shape, float* dst, ReadOnlySpan<long> dstStrides)
    {
        if (shape.Length > MaxRank) throw new ArgumentException("rank must be ≤ 8", nameof(shape));
        if (dstStrides.Length != shape.Length) throw new ArgumentException("stride count must equal rank");
        long total = 1;
        for (int ax = 0; ax < shape.Length; ax++)
        {
            if (shape[ax] < 0) throw new ArgumentOutOfRangeException(nameof(shape), "negative dimension");
            if (dstStrides[ax] < 0) throw new ArgumentException("negative dst stride", nameof(dstStrides));
            total *= shape[ax];
        }
        if (total == 0) return;
        if (PlanReduction(shape, dstStrides, out var l, out long nout, out long nred, out bool colFast))
        {
            LaunchReduction(RedAccumulate, src, dst, null, l, nout, nred, colFast, 1f);
            return;
        }
        // Overlapping destination (never produced by broadcasting): atomics, see nr_red_accumulate_atomic.
        Collapse(shape, 1, dstStrides, default, default, out var el, out long n);
        int wide = n > uint.MaxValue ? 1 : 0;
        void** a = stackalloc void*[5];
        a[0] = &src;
        a[1] = &dst;
        a[2] = &el;
        a[3] = &n;
        a[4] = &wide;
        Launch(ReduceFile, "nr_red_accumulate_atomic", GridFor(n), ElementwiseBlock, 0, a);
    }

    public double SumOfSquares(float* x, long n)
    {
        if (n <= 0) return 0;
        bool vec = Aligned16(x);
        int blocks = (int)Math.Min(FlatGrid(n, vec), Math.Min((long)_backend.MultiprocessorCount * 8, 1024));
        var partial = Scratch(blocks * sizeof(double));
        try
        {
            double* dp = (double*)partial.Pointer;
            int v = vec ? 1 : 0;
            void** a = stackalloc void*[4];
            a[0] = &x;
            a[1] = &n;
            a[2] = &dp;
            a[3] = &v;
            Launch(ReduceFile, "nr_red_sumsq", (uint)blocks, 256, 0, a);
            double* host = stackalloc double[blocks];
            _backend.Memory.CopyToHost((byte*)dp, host, blocks * sizeof(double));
            // The per-block partials in block order: the result does not depend on scheduling.
            double s = 0;
            for (int i = 0; i < blocks; i++) s += host[i];
            return s;
        }
        finally
        {
            partial.Release();
        }
    }

    public void Reduce(ReduceOp op, float* x, float* y, int outer, int dim, int inner, int* argIndex)
    {
        // x: [outer, dim, inner] → y: [outer, inner]
        if ((uint)op > (uint)ReduceOp.Min) throw new ArgumentOutOfRangeException(nameof(op), op, null);
        if (dim == 0 && op is ReduceOp.Max or ReduceOp.Min)
            throw new ArgumentException("Max/Min over an empty axis", nameof(dim));
        if (outer < 0 || dim < 0 || inner < 0) throw new ArgumentOutOfRangeException(nameof(dim), "negative dimension");
        if (outer == 0 || inner == 0) return;
        if (dim == 0)
        {
            // An empty sum is 0; an empty mean 0/0.
            Fill(y, (long)outer * inner, op == ReduceOp.Sum ? 0f : float.NaN);
            return;
        }
        Span<int> shape = [outer, dim, inner];
        Span<long> dstStrides = [inner, 0, 1];
        PlanReduction(shape, dstStrides, out var l, out long nout, out long nred, out bool colFast);
        LaunchReduction((int)op, x, y, argIndex, l, nout, nred, colFast, dim);
    }

    // ---------------------------------------------------------------- optimizers

    public void AdamWStep(float* p, float* g, float* m, float* v, long n, float lr, float beta1, float beta2,
        float eps, float weightDecay, float bias1, float bias2)
    {
        if (n <= 0) return;
        int vec = Aligned16(p) && Aligned16(g) && Aligned16(m) && Aligned16(v) ? 1 : 0;
        void** a = stackalloc void*[13];
        a[0] = &p;
        a[1] = &g;
        a[2] = &m;
        a[3] = &v;
        a[4] = &n;
        a[5] = &lr;
        a[6] = &beta1;
        a[7] = &beta2;
        a[8] = &eps;
        a[9] = &weightDecay;
        a[10] = &bias1;
        a[11] = &bias2;
        a[12] = &vec;
        Launch(OptimFile, "nr_optim_adamw", FlatGrid(n, vec != 0), ElementwiseBlock, 0, a);
    }

    /// <summary>
    /// <see cref="AdamWStep"/> on <paramref name="count"/> tensors in one launch (PyTorch's foreach/fused AdamW):
    /// p[i], g[i], m[i], v[i] are device pointers of tensor i and n[i] its size, in host arrays. The tensors
    /// are cut into 16384-element chunks that the blocks take in turn (see optim.cu). The descriptor table is
    /// uploaded to a scratch buffer (CudaMemory.CopyFromHost waits for the stream; once per optimizer step).
    /// </summary>
    public void AdamWStepMulti(int count, float** p, float** g, float** m, float** v, long* n, float lr, float beta1,
        float beta2, float eps, float weightDecay, float bias1, float bias2)
    {
        if (count <= 0) return;
        long bytes = (long)count * sizeof(AdamTensor);
        bool onStack = bytes <= 16 * 1024;
        AdamTensor* table;
        if (onStack)
        {
            AdamTensor* t = stackalloc AdamTensor[count];
            table = t;
        }
        else table = (AdamTensor*)NativeMemory.Alloc((nuint)bytes);
        try
        {
            long chunks = 0;
            for (int i = 0; i < count; i++)
            {
                if (n[i] < 0) throw new ArgumentOutOfRangeException(nameof(n), n[i], $"tensor {i} has a negative size");
                table[i] = new AdamTensor { P = p[i], G = g[i], M = m[i], V = v[i], N = n[i], FirstChunk = chunks };
                chunks += (n[i] + AdamChunk - 1) / AdamChunk;
            }
            if (chunks == 0) return;
            var desc = Upload(new ReadOnlySpan<AdamTensor>(table, count));
            try
            {
                AdamTensor* dt = (AdamTensor*)desc.Pointer;
                uint grid = (uint)Math.Min(chunks, (long)_backend.MultiprocessorCount * 8);
                void** a = stackalloc void*[10];
                a[0] = &dt;
                a[1] = &count;
                a[2] = &chunks;
                a[3] = &lr;
                a[4] = &beta1;
                a[5] = &beta2;
                a[6] = &eps;
                a[7] = &weightDecay;
                a[8] = &bias1;
                a[9] = &bias2;
                Launch(OptimFile, "nr_optim_adamw_multi", grid, ElementwiseBlock, 0, a);
            }
            finally
            {
                desc.Release();
            }
        }
        finally
        {
            if (!onStack) NativeMemory.Free(table);
        }
    }

    public void SgdStep(float* p, float* g, float* momentumBuffer, long n, float lr, float momentum, float dampening,
        float weightDecay, bool nesterov, bool firstStep)
    {
        if (n <= 0) return;
        int nest = nesterov ? 1 : 0, first = firstStep ? 1 : 0;
        int vec = Aligned16(p) && Aligned16(g) && (momentum == 0 || Aligned16(momentumBuffer)) ? 1 : 0;
        void** a = stackalloc void*[11];
        a[0] = &p;
        a[1] = &g;
        a[2] = &momentumBuffer;
        a[3] = &n;
        a[4] = &lr;
        a[5] = &momentum;
        a[6] = &dampening;
        a[7] = &weightDecay;
        a[8] = &nest;
        a[9] = &first;
        a[10] = &vec;
        Launch(OptimFile, "nr_optim_sgd", FlatGrid(n, vec != 0), ElementwiseBlock, 0, a);
    }
}
