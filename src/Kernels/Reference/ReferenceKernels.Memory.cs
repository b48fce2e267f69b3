// Source: PyTorch's caching allocators (CPU and CUDACachingAllocator): size-class pools, explicit frees, no finalizers.
namespace NativeReasoner.Kernels.Reference;

public sealed unsafe partial class ReferenceKernels
{
    public void Fill(float* y, long n, float value)
    {
        for (long i = 0; i < n; i++) y[i] = value;
    }

    public void StridedCopy(byte* src, ReadOnlySpan<long> srcStrides, byte* dst, ReadOnlySpan<long> dstStrides,
        ReadOnlySpan<int> shape, int elementSize)
    {
        CheckRank(shape, srcStrides, dstStrides);
        if (elementSize is not (1 or 2 or 4 or 8))
            throw new ArgumentOutOfRangeException(nameof(elementSize), elementSize, "must be 1, 2, 4 or 8");
        long total = ElementCount(shape);
        Span<int> index = stackalloc int[Math.Max(1, shape.Length)];
        for (long flat = 0; flat < total; flat++)
        {
            Unravel(flat, shape, index);
            byte* s = src + Offset(index, srcStrides, shape.Length) * elementSize;
            byte* d = dst + Offset(index, dstStrides, shape.Length) * elementSize;
            for (int b = 0; b < elementSize; b++) d[b] = s[b];
        }
    }

    // ---------------------------------------------------------------- strided-layout helpers (shared by
    // Binary, Where, AccumulateStrided): the flat index of the contiguous output is unravelled every element,
    // which is slow but leaves nothing to get wrong.

    internal static void CheckRank(ReadOnlySpan<int> shape, ReadOnlySpan<long> s1, ReadOnlySpan<long> s2)
    {
        if (shape.Length > 8) throw new ArgumentException("rank must be ≤ 8", nameof(shape));
        if (s1.Length != shape.Length || s2.Length != shape.Length)
            throw new ArgumentException("stride count must equal rank");
    }

    /// <summary>Product of the dims; 1 for rank 0.</summary>
    internal static long ElementCount(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentOutOfRangeException(nameof(shape), "negative dimension");
            n *= d;
        }
        return n;
    }

    /// <summary>Row-major flat index → per-axis index (last axis fastest).</summary>
    internal static void Unravel(long flat, ReadOnlySpan<int> shape, Span<int> index)
    {
        for (int a = shape.Length - 1; a >= 0; a--)
        {
            index[a] = (int)(flat % shape[a]);
            flat /= shape[a];
        }
    }

    internal static long Offset(ReadOnlySpan<int> index, ReadOnlySpan<long> strides, int rank)
    {
        long off = 0;
        for (int a = 0; a < rank; a++) off += index[a] * strides[a];
        return off;
    }
}
