// Source: torch.index_select / index_add / gather / scatter_add.
using System.Numerics.Tensors;

namespace NativeReasoner.Kernels.Cpu;

public sealed unsafe partial class CpuKernels
{
    private struct IndexState
    {
        public float* Src, Dst;
        public long* Idx;
        public int Outer, DimSrc, DimDst, N, Inner;
        public long BlocksPerOuter;
    }

    public void IndexSelect(float* x, long* idx, float* y, int outer, int dimIn, int n, int inner)
    {
        // x: [outer, dimIn, inner]; idx: [n]; y: [outer, n, inner]
        var st = new IndexState { Src = x, Dst = y, Idx = idx, Outer = outer, DimSrc = dimIn, N = n, Inner = inner };
        CpuParallel.For((long)outer * n, Math.Max(1, RowMinWork / Math.Max(1, inner)), &IndexSelectBody, &st);
    }

    private static void IndexSelectBody(void* state, long start, long end)
    {
        var st = (IndexState*)state;
        int n = st->N, inner = st->Inner;
        long bytes = (long)inner * sizeof(float);
        for (long u = start; u < end; u++)
        {
            long o = u / n, j = u % n;
            float* from = st->Src + (o * st->DimSrc + st->Idx[j]) * inner;
            Buffer.MemoryCopy(from, st->Dst + u * inner, bytes, bytes);
        }
    }

    public void IndexAdd(float* src, long* idx, float* dst, int outer, int n, int dimDst, int inner)
    {
        // src: [outer, n, inner]; idx: [n]; dst: [outer, dimDst, inner].
        // idx may repeat, so tasks are split by (outer, column block): each owns its dst columns.
        var st = new IndexState { Src = src, Dst = dst, Idx = idx, Outer = outer, N = n, DimDst = dimDst, Inner = inner };
        st.BlocksPerOuter = (inner + ColumnBlock - 1) / ColumnBlock;
        long work = (long)Math.Max(1, n) * Math.Min(inner, ColumnBlock);
        CpuParallel.For(outer * st.BlocksPerOuter, Math.Max(1, RowMinWork / work), &IndexAddBody, &st);
    }

    private static void IndexAddBody(void* state, long start, long end)
    {
        var st = (IndexState*)state;
        int n = st->N, inner = st->Inner;
        for (long u = start; u < end; u++)
        {
            long o = u / st->BlocksPerOuter;
            int i0 = (int)(u % st->BlocksPerOuter) * ColumnBlock;
            int len = Math.Min(ColumnBlock, inner - i0);
            for (int j = 0; j < n; j++)
            {
                var d = new Span<float>(st->Dst + (o * st->DimDst + st->Idx[j]) * inner + i0, len);
                TensorPrimitives.Add(d, new ReadOnlySpan<float>(st->Src + (o * n + j) * inner + i0, len), d);
            }
        }
    }

    public void Gather(float* x, long* idx, float* y, int outer, int dimIn, int dimOut, int inner)
    {
        // x: [outer, dimIn, inner]; idx, y: [outer, dimOut, inner]
        var st = new IndexState { Src = x, Dst = y, Idx = idx, Outer = outer, DimSrc = dimIn, DimDst = dimOut, Inner = inner };
        CpuParallel.For((long)outer * dimOut, Math.Max(1, RowMinWork / Math.Max(1, inner)), &GatherBody, &st);
    }

    private static void GatherBody(void* state, long start, long end)
    {
        var st = (IndexState*)state;
        int inner = st->Inner;
        for (long u = start; u < end; u++)
        {
            long o = u / st->DimDst;
            float* xo = st->Src + o * st->DimSrc * inner;
            long* ix = st->Idx + u * inner;
            float* y = st->Dst + u * inner;
            for (int i = 0; i < inner; i++) y[i] = xo[ix[i] * inner + i];
        }
    }

    public void ScatterAdd(float* src, long* idx, float* dst, int outer, int dimSrc, int dimDst, int inner)
    {
        // src, idx: [outer, dimSrc, inner]; dst: [outer, dimDst, inner].
        // Split by (outer, column block): column i of src only ever lands in column i of dst.
        var st = new IndexState { Src = src, Dst = dst, Idx = idx, Outer = outer, DimSrc = dimSrc, DimDst = dimDst, Inner = inner };
        st.BlocksPerOuter = (inner + ColumnBlock - 1) / ColumnBlock;
        long work = (long)Math.Max(1, dimSrc) * Math.Min(inner, ColumnBlock);
        CpuParallel.For(outer * st.BlocksPerOuter, Math.Max(1, RowMinWork / work), &ScatterAddBody, &st);
    }

    private static void ScatterAddBody(void* state, long start, long end)
    {
        var st = (IndexState*)state;
        int inner = st->Inner;
        for (long u = start; u < end; u++)
        {
            long o = u / st->BlocksPerOuter;
            int i0 = (int)(u % st->BlocksPerOuter) * ColumnBlock;
            int i1 = Math.Min(inner, i0 + ColumnBlock);
            float* dOut = st->Dst + o * st->DimDst * inner;
            for (int j = 0; j < st->DimSrc; j++)
            {
                long rowAt = (o * st->DimSrc + j) * inner;
                float* s = st->Src + rowAt;
                long* ix = st->Idx + rowAt;
                for (int i = i0; i < i1; i++) dOut[ix[i] * inner + i] += s[i];
            }
        }
    }
}
