// Source: RMSNorm (arXiv:1910.07467).
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace NativeReasoner.Kernels.Cpu;

public sealed unsafe partial class CpuKernels
{
    public void RmsNorm(float* x, float* w, float* y, float* rstd, int rows, int cols, float eps)
    {
        // x, y: [rows, cols]; w: [cols]; rstd: [rows]
        var st = new RowsState { A = x, B = w, C = y, D = rstd, Rows = rows, Cols = cols, Scalar = eps };
        CpuParallel.For(rows, RowsMinChunk(cols), &RmsNormBody, &st);
    }

    private static void RmsNormBody(void* state, long start, long end)
    {
        var st = (RowsState*)state;
        int cols = st->Cols;
        for (long r = start; r < end; r++)
        {
            float* x = st->A + r * cols, y = st->C + r * cols;
            double ss = TensorPrimitives.SumOfSquares(new ReadOnlySpan<float>(x, cols));
            float rs = (float)(1.0 / Math.Sqrt(ss / cols + st->Scalar));
            st->D[r] = rs;
            SimdMap.Map2(new ScaleMulOp { K = rs }, x, st->B, y, cols);
        }
    }

    private struct ScaleMulOp : IMap2 // (a, b) → a·K·b
    {
        public float K;
        public float Apply(float a, float b) => a * K * b;
        public Vector256<float> Apply(Vector256<float> a, Vector256<float> b) => a * Vector256.Create(K) * b;
        public Vector512<float> Apply(Vector512<float> a, Vector512<float> b) => a * Vector512.Create(K) * b;
    }

    public void RmsNormBackward(float* x, float* w, float* rstd, float* dy, float* dx, float* dw, int rows, int cols)
    {
        // dx_c = r·w_c·dy_c − x_c·r³/cols · Σ_k dy_k·w_k·x_k;  dw_c = Σ_rows dy_c·x_c·r.
        var st = new RowsState { A = x, B = w, C = rstd, D = dy, E = dx, F = dw, Rows = rows, Cols = cols };
        // dw first, split by column blocks (each task owns its dw columns: deterministic, no partial buffers),
        // and before dx is written so dx may alias dy.
        long blocks = (cols + ColumnBlock - 1) / ColumnBlock;
        long work = (long)Math.Max(1, rows) * Math.Min(cols, ColumnBlock);
        CpuParallel.For(blocks, Math.Max(1, RowMinWork / work), &RmsNormDwBody, &st);
        CpuParallel.For(rows, RowsMinChunk(cols), &RmsNormDxBody, &st);
    }

    private static void RmsNormDwBody(void* state, long start, long end)
    {
        var st = (RowsState*)state;
        int cols = st->Cols;
        int c0 = (int)(start * ColumnBlock), c1 = (int)Math.Min(cols, end * ColumnBlock);
        int len = c1 - c0;
        float* dw = st->F + c0;
        new Span<float>(dw, len).Clear();
        // dw[c0:c1] += r·dy[row, c0:c1]·x[row, c0:c1] row by row; the block stays in L1.
        for (long r = 0; r < st->Rows; r++)
            SimdMap.Map3(new AxpyProdOp { K = st->C[r] }, dw, st->D + r * cols + c0, st->A + r * cols + c0, dw, len);
    }

    private static void RmsNormDxBody(void* state, long start, long end)
    {
        var st = (RowsState*)state;
        int cols = st->Cols;
        for (long r = start; r < end; r++)
        {
            float* x = st->A + r * cols, g = st->D + r * cols, d = st->E + r * cols;
            float rs = st->C[r];
            double dot = Dot3(g, st->B, x, cols);
            float k = (float)((double)rs * rs * rs / cols * dot);
            SimdMap.Map3(new RmsDxOp { R = rs, K = k }, st->B, g, x, d, cols);
        }
    }

    private struct RmsDxOp : IMap3 // (w, dy, x) → R·w·dy − K·x
    {
        public float R, K;
        public float Apply(float w, float g, float x) => R * w * g - K * x;
        public Vector256<float> Apply(Vector256<float> w, Vector256<float> g, Vector256<float> x) =>
            Vector256.Create(R) * w * g - Vector256.Create(K) * x;
        public Vector512<float> Apply(Vector512<float> w, Vector512<float> g, Vector512<float> x) =>
            Vector512.Create(R) * w * g - Vector512.Create(K) * x;
    }

    private struct AxpyProdOp : IMap3 // (acc, a, b) → acc + K·a·b
    {
        public float K;
        public float Apply(float acc, float a, float b) => acc + K * a * b;
        public Vector256<float> Apply(Vector256<float> acc, Vector256<float> a, Vector256<float> b) =>
            acc + Vector256.Create(K) * a * b;
        public Vector512<float> Apply(Vector512<float> acc, Vector512<float> a, Vector512<float> b) =>
            acc + Vector512.Create(K) * a * b;
    }

    /// <summary>Σ a[i]·b[i]·c[i], vector lanes in float, the total in double.</summary>
    private static double Dot3(float* a, float* b, float* c, int n)
    {
        int i = 0;
        double total = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var acc = Vector512<float>.Zero;
            for (; i <= n - 16; i += 16) acc += Vector512.Load(a + i) * Vector512.Load(b + i) * Vector512.Load(c + i);
            total = Vector512.Sum(acc);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var acc = Vector256<float>.Zero;
            for (; i <= n - 8; i += 8) acc += Vector256.Load(a + i) * Vector256.Load(b + i) * Vector256.Load(c + i);
            total = Vector256.Sum(acc);
        }
        for (; i < n; i++) total += (double)a[i] * b[i] * c[i];
        return total;
    }
}
