// Source: torch.sum / mean / amax / amin along one axis (first index of the extreme).
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace NativeReasoner.Kernels.Cpu;

public sealed unsafe partial class CpuKernels
{
    /// <summary>Rough number of elements one task should touch before a row-parallel op splits.</summary>
    internal const long RowMinWork = 1 << 14;

    /// <summary>Column block (floats) for ops that walk [rows, block] tiles.</summary>
    private const int ColumnBlock = 256;

    private struct ReduceState
    {
        public float* X, Y;
        public int* Arg;
        public int Outer, Dim, Inner;
        public ReduceOp Op;
        public long BlocksPerOuter;
    }

    public void Reduce(ReduceOp op, float* x, float* y, int outer, int dim, int inner, int* argIndex)
    {
        // x: [outer, dim, inner] → y: [outer, inner]
        if (dim == 0 && op is ReduceOp.Max or ReduceOp.Min)
            throw new ArgumentException("Max/Min over an empty axis", nameof(dim));
        var st = new ReduceState { X = x, Y = y, Arg = argIndex, Outer = outer, Dim = dim, Inner = inner, Op = op };
        if (inner == 1)
        {
            CpuParallel.For(outer, Math.Max(1, RowMinWork / Math.Max(1, dim)), &ReduceRowsBody, &st);
        }
        else
        {
            st.BlocksPerOuter = (inner + ColumnBlock - 1) / ColumnBlock;
            long work = (long)Math.Max(1, dim) * Math.Min(inner, ColumnBlock);
            CpuParallel.For(outer * st.BlocksPerOuter, Math.Max(1, RowMinWork / work), &ReduceColumnsBody, &st);
        }
    }

    // inner == 1: each output is a reduction of one contiguous row.
    private static void ReduceRowsBody(void* state, long start, long end)
    {
        var st = (ReduceState*)state;
        int dim = st->Dim;
        for (long o = start; o < end; o++)
        {
            float* row = st->X + o * dim;
            switch (st->Op)
            {
                case ReduceOp.Sum:
                case ReduceOp.Mean:
                    {
                        double s = 0;
                        for (int c = 0; c < dim; c += 4096)
                            s += TensorPrimitives.Sum(new ReadOnlySpan<float>(row + c, Math.Min(4096, dim - c)));
                        st->Y[o] = (float)(st->Op == ReduceOp.Mean ? s / dim : s);
                        break;
                    }
                default:
                    {
                        var span = new ReadOnlySpan<float>(row, dim);
                        // IEEE max/min: a NaN anywhere makes the result NaN.
                        float v = st->Op == ReduceOp.Max ? TensorPrimitives.Max(span) : TensorPrimitives.Min(span);
                        st->Y[o] = v;
                        if (st->Arg != null)
                        {
                            int j = 0;
                            if (float.IsNaN(v)) while (!float.IsNaN(row[j])) j++;
                            else while (row[j] != v) j++;
                            st->Arg[o] = j;
                        }
                        break;
                    }
            }
        }
    }

    // inner > 1: a [dim, block] tile reduced over dim, streaming rows of x into a block of y kept in L1.
    private static void ReduceColumnsBody(void* state, long start, long end)
    {
        var st = (ReduceState*)state;
        int dim = st->Dim, inner = st->Inner;
        for (long u = start; u < end; u++)
        {
            long o = u / st->BlocksPerOuter;
            int i0 = (int)(u % st->BlocksPerOuter) * ColumnBlock;
            int len = Math.Min(ColumnBlock, inner - i0);
            float* x = st->X + o * dim * inner + i0;
            float* y = st->Y + o * inner + i0;
            var ys = new Span<float>(y, len);
            if (st->Op is ReduceOp.Sum or ReduceOp.Mean)
            {
                ys.Clear();
                for (int d = 0; d < dim; d++) TensorPrimitives.Add(ys, new ReadOnlySpan<float>(x + (long)d * inner, len), ys);
                if (st->Op == ReduceOp.Mean) TensorPrimitives.Multiply(ys, 1f / dim, ys);
            }
            else
            {
                int* arg = st->Arg != null ? st->Arg + o * inner + i0 : null;
                ExtremeColumns(x, inner, y, arg, dim, len, st->Op == ReduceOp.Max);
            }
        }
    }

    // y[i] = max/min over d of x[d·stride + i]; arg[i] = first d reaching it. A lane updates when the new value is
    // strictly better, or is NaN while the current best is not (so the first NaN wins and then sticks).
    private static void ExtremeColumns(float* x, long stride, float* y, int* arg, int dim, int len, bool max)
    {
        new ReadOnlySpan<float>(x, len).CopyTo(new Span<float>(y, len));
        if (arg != null) new Span<int>(arg, len).Clear();
        for (int d = 1; d < dim; d++)
        {
            float* xd = x + d * stride;
            int i = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                var vd = Vector512.Create(d);
                for (; i <= len - 16; i += 16)
                {
                    var v = Vector512.Load(xd + i);
                    var best = Vector512.Load(y + i);
                    var upd = (max ? Vector512.GreaterThan(v, best) : Vector512.LessThan(v, best))
                              | (~Vector512.Equals(v, v) & Vector512.Equals(best, best));
                    Vector512.Store(Vector512.ConditionalSelect(upd, v, best), y + i);
                    if (arg != null) Vector512.Store(Vector512.ConditionalSelect(upd.AsInt32(), vd, Vector512.Load(arg + i)), arg + i);
                }
            }
            else if (Vector256.IsHardwareAccelerated)
            {
                var vd = Vector256.Create(d);
                for (; i <= len - 8; i += 8)
                {
                    var v = Vector256.Load(xd + i);
                    var best = Vector256.Load(y + i);
                    var upd = (max ? Vector256.GreaterThan(v, best) : Vector256.LessThan(v, best))
                              | (~Vector256.Equals(v, v) & Vector256.Equals(best, best));
                    Vector256.Store(Vector256.ConditionalSelect(upd, v, best), y + i);
                    if (arg != null) Vector256.Store(Vector256.ConditionalSelect(upd.AsInt32(), vd, Vector256.Load(arg + i)), arg + i);
                }
            }
            for (; i < len; i++)
            {
                float v = xd[i], best = y[i];
                bool upd = (max ? v > best : v < best) || (float.IsNaN(v) && !float.IsNaN(best));
                if (upd)
                {
                    y[i] = v;
                    if (arg != null) arg[i] = d;
                }
            }
        }
    }
}
