// Source: PyTorch's caching allocators (CPU and CUDACachingAllocator): size-class pools, explicit frees, no finalizers.
namespace NativeReasoner.Kernels.Cpu;

public sealed unsafe partial class CpuKernels
{
    /// <summary>Below this many elements an elementwise op stays on the calling thread.</summary>
    internal const long ElementwiseMinChunk = 1 << 15;

    /// <summary>Longest span handed to one TensorPrimitives call (span lengths are int).</summary>
    internal const int SpanChunk = 1 << 20;

    private struct FillState
    {
        public float* Y;
        public float Value;
    }

    public void Fill(float* y, long n, float value)
    {
        var st = new FillState { Y = y, Value = value };
        CpuParallel.For(n, ElementwiseMinChunk, &FillBody, &st);
    }

    private static void FillBody(void* state, long start, long end)
    {
        var st = (FillState*)state;
        for (long s = start; s < end; s += SpanChunk)
            new Span<float>(st->Y + s, (int)Math.Min(SpanChunk, end - s)).Fill(st->Value);
    }

    public void StridedCopy(byte* src, ReadOnlySpan<long> srcStrides, byte* dst, ReadOnlySpan<long> dstStrides,
        ReadOnlySpan<int> shape, int elementSize)
    {
        if (elementSize is not (1 or 2 or 4 or 8))
            throw new ArgumentOutOfRangeException(nameof(elementSize), elementSize, "must be 1, 2, 4 or 8");
        StridedPlan plan = default;
        if (!StridedPlan.Init(&plan, shape, 2, srcStrides, dstStrides, default, default, false, false, false, false)) return;
        plan.Base[0] = (long)src;
        plan.Base[1] = (long)dst;
        plan.ElementSize = elementSize;
        plan.Segment = &CopySegment;
        // Copies are memory-bound: only split large ones.
        StridedPlan.Run(&plan, ElementwiseMinChunk * 4 / elementSize);
    }

    private static void CopySegment(StridedPlan* p, long* off, int len)
    {
        int es = p->ElementSize;
        byte* s = (byte*)p->Base[0] + off[0] * es;
        byte* d = (byte*)p->Base[1] + off[1] * es;
        long ss = p->InnerStride(0), ds = p->InnerStride(1);
        if (ss == 1 && ds == 1)
        {
            Buffer.MemoryCopy(s, d, (long)len * es, (long)len * es);
            return;
        }
        switch (es)
        {
            case 1: CopyStrided((byte*)s, ss, (byte*)d, ds, len); break;
            case 2: CopyStrided((ushort*)s, ss, (ushort*)d, ds, len); break;
            case 4: CopyStrided((uint*)s, ss, (uint*)d, ds, len); break;
            default: CopyStrided((ulong*)s, ss, (ulong*)d, ds, len); break;
        }
    }

    private static void CopyStrided<T>(T* s, long ss, T* d, long ds, int len) where T : unmanaged
    {
        if (ss == 0 && ds == 1)
        {
            new Span<T>(d, len).Fill(*s); // broadcast source
            return;
        }
        for (int i = 0; i < len; i++) d[i * ds] = s[i * ss];
    }
}
