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
                // dx = y ⊙ (dy − Σ dy⊙y)
                float s = TensorPrimitives.Dot(new ReadOnlySpan<float>(g, cols), new ReadOnlySpan<float>(y, cols));
                SimdMap.Map2(new SoftmaxGradOp { S = s }, y, g, d, cols);
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

    private struct SoftmaxGradOp : IMap2 // (y, dy) → y·(dy − S)
    {
        public float S;
        public float Apply(float y, float g) => y * (g - S);
        public Vector256<float> Apply(Vector256<float> y, Vector256<float> g) => y * (g - Vector256.Create(S));
        public Vector512<float> Apply(Vector512<float> y, Vector512<float> g) => y * (g - Vector512.Create(S));
    }
}
