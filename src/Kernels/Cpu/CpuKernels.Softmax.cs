// Source: online softmax normaliser (arXiv:1805.02867); torch.softmax / log_softmax.
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace NativeReasoner.Kernels.Cpu;

public sealed unsafe partial class CpuKernels
{
    private struct RowsState
    {
        public float* A, B, C, D, E, F;
        public int Rows, Cols;
        public bool Flag;
        public float Scalar;
    }

    private static long RowsMinChunk(int cols) => Math.Max(1, RowMinWork / Math.Max(1, cols));

    public void Softmax(float* x, float* y, int rows, int cols, bool log)
    {
        var st = new RowsState { A = x, B = y, Rows = rows, Cols = cols, Flag = log };
        CpuParallel.For(rows, RowsMinChunk(cols), &SoftmaxBody, &st);
    }

    private static void SoftmaxBody(void* state, long start, long end)
    {
        var st = (RowsState*)state;
        int cols = st->Cols;
        if (cols == 0) return;
        for (long r = start; r < end; r++)
        {
            var x = new ReadOnlySpan<float>(st->A + r * cols, cols);
            var y = new Span<float>(st->B + r * cols, cols);
            // Not TensorPrimitives.SoftMax: it does not subtract the max and overflows on large logits.
            float max = TensorPrimitives.Max(x);
            TensorPrimitives.Subtract(x, max, y); // y may alias x: x is not read again
            if (!st->Flag)
            {
                TensorPrimitives.Exp(y, y);
                TensorPrimitives.Divide(y, TensorPrimitives.Sum(y), y);
            }
            else
            {
                TensorPrimitives.Subtract(y, (float)Math.Log(SumExp(st->B + r * cols, cols)), y);
            }
        }
    }

    /// <summary>Σ exp(x[i]) through a stack scratch, partial sums in double.</summary>
    private static double SumExp(float* x, int n)
    {
        float* tmp = stackalloc float[TempChunk];
        double sum = 0;
        for (int s = 0; s < n; s += TempChunk)
        {
            int len = Math.Min(TempChunk, n - s);
            var t = new Span<float>(tmp, len);
            TensorPrimitives.Exp(new ReadOnlySpan<float>(x + s, len), t);
            sum += TensorPrimitives.Sum(t);
        }
        return sum;
    }

    public void SoftmaxBackward(float* y, float* dy, float* dx, int rows, int cols, bool log)
    {
        var st = new RowsState { A = y, B = dy, C = dx, Rows = rows, Cols = cols, Flag = log };
        CpuParallel.For(rows, RowsMinChunk(cols), &SoftmaxBackwardBody, &st);
    }

    private static void SoftmaxBackwardBody(void* state, long start, long end)
    {
        var st = (RowsState*)state;
        int cols = st->Cols;
        float* tmp = stackalloc float[TempChunk];
        for (long r = start; r < end; r++)
        {
            float* y = st->A + r * cols, g = st->B + r * cols, d = st->C + r * cols;
            if (!st->Flag)
            {
                // dx = y ⊙ (dy·Σy − Σ dy⊙y), in double: see ReferenceKernels.SoftmaxBackward for why the Σy
                // (= 1) factor stays — it keeps near one-hot rows accurate.
                SoftmaxGradRowDouble(y, g, d, cols);
            }
            else
            {
                // dx = dy − exp(y) · Σ dy
                float s = TensorPrimitives.Sum(new ReadOnlySpan<float>(g, cols));
                for (int c = 0; c < cols; c += TempChunk)
                {
                    int len = Math.Min(TempChunk, cols - c);
                    var t = new Span<float>(tmp, len);
                    TensorPrimitives.Exp(new ReadOnlySpan<float>(y + c, len), t);
                    TensorPrimitives.MultiplyAdd(t, -s, new ReadOnlySpan<float>(g + c, len), new Span<float>(d + c, len));
                }
            }
        }
    }

    /// <summary>One row of the softmax gradient with double sums and double per-element arithmetic.</summary>
    private static void SoftmaxGradRowDouble(float* y, float* g, float* d, int cols)
    {
        double sumY = 0, dot = 0;
        int c = 0;
        if (Vector512.IsHardwareAccelerated && cols >= 16)
        {
            var accY = Vector512<double>.Zero;
            var accD = Vector512<double>.Zero;
            for (; c <= cols - 16; c += 16)
            {
                var (ylo, yhi) = Vector512.Widen(Vector512.Load(y + c));
                var (glo, ghi) = Vector512.Widen(Vector512.Load(g + c));
                accY += ylo + yhi;
                accD += ylo * glo + yhi * ghi;
            }
            sumY = Vector512.Sum(accY);
            dot = Vector512.Sum(accD);
        }
        for (; c < cols; c++)
        {
            sumY += y[c];
            dot += (double)g[c] * y[c];
        }
        c = 0;
        if (Vector512.IsHardwareAccelerated && cols >= 16)
        {
            var vs = Vector512.Create(sumY);
            var vd = Vector512.Create(dot);
            for (; c <= cols - 16; c += 16)
            {
                var (ylo, yhi) = Vector512.Widen(Vector512.Load(y + c));
                var (glo, ghi) = Vector512.Widen(Vector512.Load(g + c));
                Vector512.Narrow(ylo * (glo * vs - vd), yhi * (ghi * vs - vd)).Store(d + c);
            }
        }
        for (; c < cols; c++) d[c] = (float)(y[c] * (g[c] * sumY - dot));
    }
}
