using ILGPU;
using ILGPU.Runtime;

namespace NativeReasoner.Kernels.Ilgpu;

// Implicitly grouped kernels: one thread per element, ILGPU picks the group size.
public sealed unsafe partial class IlgpuKernels
{
    private Action<Index1D, ArrayView<float>, float>? _fill;
    private Action<Index1D, ArrayView<byte>, ArrayView<byte>, Layout8, Strides8, Strides8, long, long>? _copy1;
    private Action<Index1D, ArrayView<ushort>, ArrayView<ushort>, Layout8, Strides8, Strides8, long, long>? _copy2;
    private Action<Index1D, ArrayView<uint>, ArrayView<uint>, Layout8, Strides8, Strides8, long, long>? _copy4;
    private Action<Index1D, ArrayView<ulong>, ArrayView<ulong>, Layout8, Strides8, Strides8, long, long>? _copy8;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, int, float>? _unary;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>? _unaryBack;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, Layout8, Strides8, Strides8, int>? _binary;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, Layout8, Strides8, Strides8, Strides8>? _where;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, Layout8, Strides8, Layout8, Strides8, Strides8>? _accumulate;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, Layout8, Strides8>? _accumulateAtomic;
    private Action<KernelConfig, ArrayView<float>, ArrayView<double>, int>? _sumSquares;

    public void Fill(float* y, long n, float value)
    {
        if (n == 0) return;
        lock (_backend.Sync)
            (_fill ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, float>(FillKernel))(Extent(n), F(y), value);
    }

    private static void FillKernel(Index1D i, ArrayView<float> y, float value) => y[i] = value;

    public void StridedCopy(byte* src, ReadOnlySpan<long> srcStrides, byte* dst, ReadOnlySpan<long> dstStrides,
        ReadOnlySpan<int> shape, int elementSize)
    {
        CheckRank(shape, srcStrides, dstStrides);
        long total = Count(shape);
        if (total == 0) return;
        var d = Layout8.FromShape(shape);
        var ss = Strides8.From(srcStrides);
        var ds = Strides8.From(dstStrides);
        // A view cannot start before its pointer, so a negative stride (a reversed view) would index below 0:
        // the views start at the lowest element each side touches and the kernel adds the offset back.
        long srcBase = -LowestOffset(shape, srcStrides), dstBase = -LowestOffset(shape, dstStrides);
        byte* srcLow = src - srcBase * elementSize, dstLow = dst - dstBase * elementSize;
        int n = Extent(total);
        lock (_backend.Sync)
        {
            switch (elementSize)
            {
                case 1:
                    (_copy1 ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<byte>, ArrayView<byte>, Layout8,
                        Strides8, Strides8, long, long>(CopyKernel))(
                        n, Mem.View<byte>(srcLow), Mem.View<byte>(dstLow), d, ss, ds, srcBase, dstBase);
                    break;
                case 2:
                    (_copy2 ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, ArrayView<ushort>, Layout8,
                        Strides8, Strides8, long, long>(CopyKernel))(
                        n, Mem.View<ushort>(srcLow), Mem.View<ushort>(dstLow), d, ss, ds, srcBase, dstBase);
                    break;
                case 4:
                    (_copy4 ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<uint>, ArrayView<uint>, Layout8,
                        Strides8, Strides8, long, long>(CopyKernel))(
                        n, Mem.View<uint>(srcLow), Mem.View<uint>(dstLow), d, ss, ds, srcBase, dstBase);
                    break;
                case 8:
                    (_copy8 ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ulong>, ArrayView<ulong>, Layout8,
                        Strides8, Strides8, long, long>(CopyKernel))(
                        n, Mem.View<ulong>(srcLow), Mem.View<ulong>(dstLow), d, ss, ds, srcBase, dstBase);
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(elementSize), elementSize, "must be 1, 2, 4 or 8");
            }
        }
    }

    /// <summary>The most negative element offset a strided view of this shape reaches (0 with no negative stride).</summary>
    private static long LowestOffset(ReadOnlySpan<int> shape, ReadOnlySpan<long> strides)
    {
        long low = 0;
        for (int i = 0; i < shape.Length; i++)
            if (strides[i] < 0) low += strides[i] * (shape[i] - 1);
        return low;
    }

    private static void CopyKernel<T>(Index1D i, ArrayView<T> src, ArrayView<T> dst, Layout8 d, Strides8 ss,
        Strides8 ds, long srcBase, long dstBase)
        where T : unmanaged =>
        dst[dstBase + DeviceMath.Offset(i, d, ds)] = src[srcBase + DeviceMath.Offset(i, d, ss)];

    // ---------------------------------------------------------------- unary

    public void Unary(UnaryOp op, float* x, float* y, long n, float alpha)
    {
        if (n == 0) return;
        lock (_backend.Sync)
            (_unary ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, float>(UnaryKernel))(
                Extent(n), F(x), F(y), (int)op, alpha);
    }

    private static void UnaryKernel(Index1D i, ArrayView<float> x, ArrayView<float> y, int op, float alpha) =>
        y[i] = UnaryScalar(op, x[i], alpha);

    private static float UnaryScalar(int op, float x, float alpha)
    {
        switch ((UnaryOp)op)
        {
            case UnaryOp.Neg: return -x;
            case UnaryOp.Exp: return MathF.Exp(x);
            case UnaryOp.Log: return MathF.Log(x);
            case UnaryOp.Sqrt: return MathF.Sqrt(x);
            case UnaryOp.Rsqrt: return 1f / MathF.Sqrt(x);
            case UnaryOp.Pow: return MathF.Pow(x, alpha);
            case UnaryOp.Silu: return x / (1f + MathF.Exp(-x));
            case UnaryOp.Sigmoid: return 1f / (1f + MathF.Exp(-x));
            case UnaryOp.Tanh: return MathF.Tanh(x);
            case UnaryOp.Scale: return alpha * x;
            case UnaryOp.AddScalar: return x + alpha;
            case UnaryOp.Square: return x * x;
            // NaN propagates through relu, as in PyTorch.
            case UnaryOp.Relu: return float.IsNaN(x) ? x : (x > 0f ? x : 0f);
            case UnaryOp.Abs: return MathF.Abs(x);
            default: return float.NaN;
        }
    }

    public void UnaryBackward(UnaryOp op, float* x, float* y, float* dy, float* dx, long n, float alpha)
    {
        if (n == 0) return;
        lock (_backend.Sync)
            (_unaryBack ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(UnaryBackwardKernel))(
                Extent(n), F(x), F(y), F(dy), F(dx), (int)op, alpha);
    }

    private static void UnaryBackwardKernel(Index1D i, ArrayView<float> x, ArrayView<float> y, ArrayView<float> dy,
        ArrayView<float> dx, int op, float alpha)
    {
        // Read everything before the write: dx may alias dy.
        float xi = x[i], yi = y[i], g = dy[i], d;
        switch ((UnaryOp)op)
        {
            case UnaryOp.Neg: d = -1f; break;
            case UnaryOp.Exp: d = yi; break;
            case UnaryOp.Log: d = 1f / xi; break;
            case UnaryOp.Sqrt: d = 0.5f / yi; break;
            case UnaryOp.Rsqrt: d = -0.5f * yi * yi * yi; break; // d/dx x^-1/2 = -1/2 · y³
            case UnaryOp.Pow: d = alpha * MathF.Pow(xi, alpha - 1f); break;
            case UnaryOp.Silu:
                {
                    float s = 1f / (1f + MathF.Exp(-xi));
                    d = s * (1f + xi * (1f - s));
                    break;
                }
            case UnaryOp.Sigmoid: d = yi * (1f - yi); break;
            case UnaryOp.Tanh: d = 1f - yi * yi; break;
            case UnaryOp.Scale: d = alpha; break;
            case UnaryOp.AddScalar: d = 1f; break;
            case UnaryOp.Square: d = 2f * xi; break;
            case UnaryOp.Relu: d = xi > 0f ? 1f : 0f; break;
            case UnaryOp.Abs: d = xi > 0f ? 1f : xi < 0f ? -1f : 0f; break;
            default: d = float.NaN; break;
        }
        dx[i] = g * d;
    }

    // ---------------------------------------------------------------- binary / where (broadcast through strides)

    public void Binary(BinaryOp op, float* a, ReadOnlySpan<long> aStrides, float* b, ReadOnlySpan<long> bStrides,
        float* c, ReadOnlySpan<int> shape)
    {
        CheckRank(shape, aStrides, bStrides);
        long total = Count(shape);
        if (total == 0) return;
        lock (_backend.Sync)
            (_binary ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, Layout8, Strides8, Strides8, int>(BinaryKernel))(
                Extent(total), F(a), F(b), F(c), Layout8.FromShape(shape), Strides8.From(aStrides), Strides8.From(bStrides), (int)op);
    }

    private static void BinaryKernel(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c,
        Layout8 d, Strides8 sa, Strides8 sb, int op)
    {
        float x = a[DeviceMath.Offset(i, d, sa)], y = b[DeviceMath.Offset(i, d, sb)], r;
        switch ((BinaryOp)op)
        {
            case BinaryOp.Add: r = x + y; break;
            case BinaryOp.Sub: r = x - y; break;
            case BinaryOp.Mul: r = x * y; break;
            case BinaryOp.Div: r = x / y; break;
            // IEEE 754-2019 maximum/minimum: NaN propagates, +0 > −0.
            case BinaryOp.Maximum:
                r = float.IsNaN(x) || float.IsNaN(y) ? float.NaN
                    : x > y ? x : y > x ? y : (IsNegativeZero(x) ? y : x);
                break;
            case BinaryOp.Minimum:
                r = float.IsNaN(x) || float.IsNaN(y) ? float.NaN
                    : x < y ? x : y < x ? y : (IsNegativeZero(x) ? x : y);
                break;
            default: r = float.NaN; break;
        }
        c[i] = r;
    }

    private static bool IsNegativeZero(float v) => Interop.FloatAsInt(v) == 0x80000000u;

    public void Where(float* cond, ReadOnlySpan<long> condStrides, float* a, ReadOnlySpan<long> aStrides,
        float* b, ReadOnlySpan<long> bStrides, float* output, ReadOnlySpan<int> shape)
    {
        CheckRank(shape, aStrides, bStrides);
        CheckRank(shape, condStrides, condStrides);
        long total = Count(shape);
        if (total == 0) return;
        lock (_backend.Sync)
            (_where ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, Layout8, Strides8, Strides8, Strides8>(WhereKernel))(
                Extent(total), F(cond), F(a), F(b), F(output), Layout8.FromShape(shape),
                Strides8.From(condStrides), Strides8.From(aStrides), Strides8.From(bStrides));
    }

    private static void WhereKernel(Index1D i, ArrayView<float> cond, ArrayView<float> a, ArrayView<float> b,
        ArrayView<float> output, Layout8 d, Strides8 sc, Strides8 sa, Strides8 sb) =>
        output[i] = cond[DeviceMath.Offset(i, d, sc)] != 0f ? a[DeviceMath.Offset(i, d, sa)] : b[DeviceMath.Offset(i, d, sb)];

    // ---------------------------------------------------------------- accumulate (reverse of broadcasting)

    public void AccumulateStrided(float* src, ReadOnlySpan<int> shape, float* dst, ReadOnlySpan<long> dstStrides)
    {
        CheckRank(shape, dstStrides, dstStrides);
        long total = Count(shape);
        if (total == 0) return;
        foreach (var s in dstStrides)
            if (s < 0) throw new ArgumentException("negative dst stride", nameof(dstStrides));

        // Split the axes: kept ones (dst stride ≠ 0, size > 1) and summed ones (stride 0). When the kept axes
        // address distinct dst elements, one thread per dst element sums its src elements in a fixed order:
        // deterministic, no atomics. Otherwise (overlapping dst strides) fall back to atomic adds.
        int rank = shape.Length;
        Span<long> srcStrides = stackalloc long[Math.Max(1, rank)];
        long st = 1;
        for (int a = rank - 1; a >= 0; a--) { srcStrides[a] = st; st *= shape[a]; }
        var keptShape = new List<int>(); var keptSrc = new List<long>(); var keptDst = new List<long>();
        var sumShape = new List<int>(); var sumSrc = new List<long>();
        for (int a = 0; a < rank; a++)
        {
            if (shape[a] == 1) continue;
            if (dstStrides[a] != 0) { keptShape.Add(shape[a]); keptSrc.Add(srcStrides[a]); keptDst.Add(dstStrides[a]); }
            else { sumShape.Add(shape[a]); sumSrc.Add(srcStrides[a]); }
        }
        bool distinct = KeptAxesDistinct(keptShape, keptDst);
        lock (_backend.Sync)
        {
            if (distinct)
            {
                long kept = Count(keptShape.ToArray());
                (_accumulate ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, Layout8, Strides8, Layout8, Strides8, Strides8>(AccumulateKernel))(
                    Extent(kept), F(src), F(dst), Layout8.FromShape(keptShape.ToArray()), Strides8.From(keptSrc.ToArray()),
                    Layout8.FromShape(sumShape.ToArray()), Strides8.From(sumSrc.ToArray()), Strides8.From(keptDst.ToArray()));
            }
            else
            {
                (_accumulateAtomic ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, Layout8, Strides8>(AccumulateAtomicKernel))(
                    Extent(total), F(src), F(dst), Layout8.FromShape(shape), Strides8.From(dstStrides));
            }
        }
    }

    /// <summary>True when the kept axes map distinct indices to distinct offsets (strides nest without overlap).</summary>
    private static bool KeptAxesDistinct(List<int> shape, List<long> strides)
    {
        var order = Enumerable.Range(0, shape.Count).OrderBy(a => strides[a]).ToArray();
        long extent = 1; // every offset reachable by the smaller-stride axes is < extent
        foreach (int a in order)
        {
            if (strides[a] < extent) return false;
            extent = strides[a] * shape[a];
        }
        return true;
    }

    private static void AccumulateKernel(Index1D t, ArrayView<float> src, ArrayView<float> dst,
        Layout8 keptDims, Strides8 keptSrc, Layout8 sumDims, Strides8 sumSrc, Strides8 keptDst)
    {
        long srcBase = DeviceMath.Offset(t, keptDims, keptSrc);
        long n = sumDims.D0 * sumDims.D1 * sumDims.D2 * sumDims.D3 * sumDims.D4 * sumDims.D5 * sumDims.D6 * sumDims.D7;
        // In double: a broadcast operand's gradient is a long sum whose terms cancel (the reference does the same).
        double s = 0;
        for (long k = 0; k < n; k++) s += src[srcBase + DeviceMath.Offset(k, sumDims, sumSrc)];
        long at = DeviceMath.Offset(t, keptDims, keptDst);
        dst[at] = (float)(dst[at] + s);
    }

    private static void AccumulateAtomicKernel(Index1D i, ArrayView<float> src, ArrayView<float> dst, Layout8 d, Strides8 ds) =>
        Atomic.Add(ref dst[DeviceMath.Offset(i, d, ds)], src[i]);

    // ---------------------------------------------------------------- sum of squares (grouped reduction)

    public double SumOfSquares(float* x, long n)
    {
        if (n == 0) return 0;
        lock (_backend.Sync)
        {
            var cfg = RowConfig(Math.Min(1024, (n + _rowGroup - 1) / _rowGroup));
            using var partial = Scratch<double>(cfg.GridDim.X);
            (_sumSquares ??= _acc.LoadStreamKernel<ArrayView<float>, ArrayView<double>, int>(SumSquaresKernel))(
                cfg, F(x), partial.View, Extent(n));
            // Host read: the partials must be complete.
            _acc.DefaultStream.Synchronize();
            var host = partial.GetAsArray1D();
            double s = 0;
            foreach (var v in host) s += v;
            return s;
        }
    }

    /// <summary>Grid-stride Σx² per thread in double; thread 0 of each group adds up the group's partials.</summary>
    private static void SumSquaresKernel(ArrayView<float> x, ArrayView<double> partial, int n)
    {
        var scratch = SharedMemory.Allocate<double>(1024);
        double s = 0;
        for (int i = Grid.GlobalIndex.X; i < n; i += Grid.DimX * Group.DimX) s += (double)x[i] * x[i];
        scratch[Group.IdxX] = s;
        Group.Barrier();
        if (Group.IsFirstThread)
        {
            double t = 0;
            for (int k = 0; k < Group.DimX; k++) t += scratch[k];
            partial[Grid.IdxX] = t;
        }
    }

    // ---------------------------------------------------------------- shape helpers

    private static void CheckRank(ReadOnlySpan<int> shape, ReadOnlySpan<long> s1, ReadOnlySpan<long> s2)
    {
        if (shape.Length > 8) throw new ArgumentException("rank must be ≤ 8", nameof(shape));
        if (s1.Length != shape.Length || s2.Length != shape.Length)
            throw new ArgumentException("stride count must equal rank");
    }

    private static long Count(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentOutOfRangeException(nameof(shape), "negative dimension");
            n *= d;
        }
        return n;
    }
}
