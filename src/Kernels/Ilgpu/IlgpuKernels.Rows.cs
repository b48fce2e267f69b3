using ILGPU;
using ILGPU.Runtime;

namespace NativeReasoner.Kernels.Ilgpu;

// Explicitly grouped row kernels: one group per row (groups loop over rows when there are more rows than
// groups), threads stride over the row's columns, and warp shuffles + shared memory combine the partial
// results (DeviceMath.GroupSum / GroupMax / GroupArgBest).
public sealed unsafe partial class IlgpuKernels
{
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int>? _reduceRows;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int, int>? _reduceCols;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int, int>? _softmax;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>? _softmaxBack;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float>? _rmsNorm;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>? _rmsNormBackDx;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>? _rmsNormBackDw;
    private Action<KernelConfig, ArrayView<float>, ArrayView<long>, ArrayView<float>, ArrayView<float>, int, int, long>? _crossEntropy;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<long>, ArrayView<float>, ArrayView<float>, int, long>? _crossEntropyBack;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<long>, int, int, int>? _topK;

    // ---------------------------------------------------------------- reduce

    public void Reduce(ReduceOp op, float* x, float* y, int outer, int dim, int inner, int* argIndex)
    {
        if ((op == ReduceOp.Max || op == ReduceOp.Min) && dim == 0 && (long)outer * inner > 0)
            throw new ArgumentException("Max/Min over an empty axis", nameof(dim));
        long outputs = (long)outer * inner;
        if (outputs == 0) return;
        lock (_backend.Sync)
        {
            // Without argIndex the kernels write their indices to a scratch buffer nobody reads.
            using var dummy = argIndex == null ? Scratch<int>(outputs) : null;
            ArrayView<int> arg = argIndex == null ? dummy!.View : I(argIndex);
            if (inner == 1 && dim >= 2 * _rowGroup)
            {
                // x: [outer, dim]: each row is contiguous, a group per row reads it coalesced.
                (_reduceRows ??= _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int>(ReduceRowsKernel))(
                    RowConfig(outer), F(x), F(y), arg, outer, dim, (int)op);
            }
            else
            {
                // One thread per output (o, i): neighbouring threads read neighbouring i, coalesced for inner > 1.
                (_reduceCols ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int, int>(ReduceColsKernel))(
                    Extent(outputs), F(x), F(y), arg, outer, dim, inner, (int)op);
            }
        }
    }

    private static void ReduceRowsKernel(ArrayView<float> x, ArrayView<float> y, ArrayView<int> arg, int rows, int dim, int op)
    {
        var sv = SharedMemory.Allocate<float>(DeviceMath.MaxWarps);
        var si = SharedMemory.Allocate<int>(DeviceMath.MaxWarps);
        // Min is the max of the negated values (negation keeps NaN a NaN and ties as ties).
        float sign = op == (int)ReduceOp.Min ? -1f : 1f;
        bool extreme = op == (int)ReduceOp.Max || op == (int)ReduceOp.Min;
        for (int r = Grid.IdxX; r < rows; r += Grid.DimX)
        {
            long row = (long)r * dim;
            if (extreme)
            {
                float best = float.NegativeInfinity;
                int bi = int.MaxValue;
                for (int c = Group.IdxX; c < dim; c += Group.DimX)
                {
                    float v = sign * x[row + c];
                    if (DeviceMath.RanksBefore(v, c, best, bi)) { best = v; bi = c; }
                }
                DeviceMath.GroupArgBest(ref best, ref bi, sv, si);
                if (Group.IsFirstThread) { y[r] = sign * best; arg[r] = bi; }
            }
            else
            {
                float s = 0f;
                for (int c = Group.IdxX; c < dim; c += Group.DimX) s += x[row + c];
                s = DeviceMath.GroupSum(s, sv);
                if (Group.IsFirstThread) y[r] = op == (int)ReduceOp.Mean ? s / dim : s;
            }
        }
    }

    private static void ReduceColsKernel(Index1D t, ArrayView<float> x, ArrayView<float> y, ArrayView<int> arg,
        int outer, int dim, int inner, int op)
    {
        int o = t / inner, i = t - o * inner;
        long col = (long)o * dim * inner + i; // element d at col + d·inner
        if (op == (int)ReduceOp.Sum || op == (int)ReduceOp.Mean)
        {
            float s = 0f;
            for (int d = 0; d < dim; d++) s += x[col + (long)d * inner];
            y[t] = op == (int)ReduceOp.Mean ? s / dim : s;
            return;
        }
        float best = x[col];
        int bi = 0;
        // Strictly better only, so ties keep the first index; the first NaN wins and sticks.
        for (int d = 1; d < dim && !float.IsNaN(best); d++)
        {
            float v = x[col + (long)d * inner];
            if (float.IsNaN(v) || (op == (int)ReduceOp.Max ? v > best : v < best)) { best = v; bi = d; }
        }
        y[t] = best;
        arg[t] = bi;
    }

    // ---------------------------------------------------------------- softmax

    public void Softmax(float* x, float* y, int rows, int cols, bool log)
    {
        if ((long)rows * cols == 0) return;
        lock (_backend.Sync)
            (_softmax ??= _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int, int>(SoftmaxKernel))(
                RowConfig(rows), F(x), F(y), rows, cols, log ? 1 : 0);
    }

    /// <summary>x, y: [rows, cols]; max-subtracted; y may alias x (each thread reads its elements before writing them).</summary>
    private static void SoftmaxKernel(ArrayView<float> x, ArrayView<float> y, int rows, int cols, int log)
    {
        var scratch = SharedMemory.Allocate<float>(DeviceMath.MaxWarps);
        for (int r = Grid.IdxX; r < rows; r += Grid.DimX)
        {
            long row = (long)r * cols;
            float m = float.NegativeInfinity;
            for (int c = Group.IdxX; c < cols; c += Group.DimX) m = DeviceMath.MaxNaN(m, x[row + c]);
            m = DeviceMath.GroupMax(m, scratch);
            float s = 0f;
            for (int c = Group.IdxX; c < cols; c += Group.DimX) s += MathF.Exp(x[row + c] - m);
            s = DeviceMath.GroupSum(s, scratch);
            float logSum = MathF.Log(s), inv = 1f / s;
            for (int c = Group.IdxX; c < cols; c += Group.DimX)
            {
                float z = x[row + c] - m;
                y[row + c] = log != 0 ? z - logSum : MathF.Exp(z) * inv;
            }
        }
    }

    public void SoftmaxBackward(float* y, float* dy, float* dx, int rows, int cols, bool log)
    {
        if ((long)rows * cols == 0) return;
        lock (_backend.Sync)
            (_softmaxBack ??= _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(SoftmaxBackwardKernel))(
                RowConfig(rows), F(y), F(dy), F(dx), rows, cols, log ? 1 : 0);
    }

    private static void SoftmaxBackwardKernel(ArrayView<float> y, ArrayView<float> dy, ArrayView<float> dx, int rows, int cols, int log)
    {
        var scratch = SharedMemory.Allocate<double>(DeviceMath.MaxWarps);
        for (int r = Grid.IdxX; r < rows; r += Grid.DimX)
        {
            long row = (long)r * cols;
            // Softmax: dx = y ⊙ (dy·Σy − Σ dy⊙y) in double (see ReferenceKernels.SoftmaxBackward: keeping
            // the Σy = 1 factor keeps near one-hot rows accurate). Log-softmax: dx = dy − exp(y)·Σdy.
            double s = 0, sumY = 0;
            for (int c = Group.IdxX; c < cols; c += Group.DimX)
            {
                s += log != 0 ? dy[row + c] : (double)dy[row + c] * y[row + c];
                sumY += y[row + c];
            }
            s = DeviceMath.GroupSumD(s, scratch);
            sumY = DeviceMath.GroupSumD(sumY, scratch);
            for (int c = Group.IdxX; c < cols; c += Group.DimX)
            {
                float yv = y[row + c], g = dy[row + c];
                dx[row + c] = log != 0 ? (float)(g - MathF.Exp(yv) * s) : (float)(yv * (g * sumY - s));
            }
        }
    }

    // ---------------------------------------------------------------- RMSNorm

    public void RmsNorm(float* x, float* w, float* y, float* rstd, int rows, int cols, float eps)
    {
        if (rows == 0) return;
        lock (_backend.Sync)
            (_rmsNorm ??= _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float>(RmsNormKernel))(
                RowConfig(rows), F(x), cols == 0 ? F(x) : F(w), F(y), F(rstd), rows, cols, eps);
    }

    /// <summary>x, y: [rows, cols]; w: [cols]; rstd: [rows] = 1/sqrt(mean(x²) + eps); y = x · rstd · w.</summary>
    private static void RmsNormKernel(ArrayView<float> x, ArrayView<float> w, ArrayView<float> y, ArrayView<float> rstd,
        int rows, int cols, float eps)
    {
        var scratch = SharedMemory.Allocate<float>(DeviceMath.MaxWarps);
        for (int r = Grid.IdxX; r < rows; r += Grid.DimX)
        {
            long row = (long)r * cols;
            float ss = 0f;
            for (int c = Group.IdxX; c < cols; c += Group.DimX) { float v = x[row + c]; ss += v * v; }
            ss = DeviceMath.GroupSum(ss, scratch);
            float rs = 1f / MathF.Sqrt(ss / cols + eps);
            if (Group.IsFirstThread) rstd[r] = rs;
            for (int c = Group.IdxX; c < cols; c += Group.DimX) y[row + c] = x[row + c] * rs * w[c];
        }
    }

    public void RmsNormBackward(float* x, float* w, float* rstd, float* dy, float* dx, float* dw, int rows, int cols)
    {
        if (cols == 0) return;
        lock (_backend.Sync)
        {
            if (rows == 0)
            {
                Fill(dw, cols, 0f);
                return;
            }
            (_rmsNormBackDx ??= _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(RmsNormBackwardDxKernel))(
                RowConfig(rows), F(x), F(w), F(rstd), F(dy), F(dx), rows, cols);
            // dw sums over rows: one thread per column walks down the rows (neighbouring threads read neighbouring columns).
            (_rmsNormBackDw ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(RmsNormBackwardDwKernel))(
                cols, F(x), F(rstd), F(dy), F(dw), rows, cols);
        }
    }

    /// <summary>
    /// dx_c = r·w_c·dy_c − x_c·r³/cols · Σ_k dy_k·w_k·x_k (y_c = x_c·r·w_c, ∂r/∂x_c = −r³·x_c/cols). The two
    /// terms cancel almost exactly when eps is small against mean(x²) (always so for cols = 1), so this one
    /// is computed in double.
    /// </summary>
    private static void RmsNormBackwardDxKernel(ArrayView<float> x, ArrayView<float> w, ArrayView<float> rstd,
        ArrayView<float> dy, ArrayView<float> dx, int rows, int cols)
    {
        var scratch = SharedMemory.Allocate<double>(DeviceMath.MaxWarps);
        for (int r = Grid.IdxX; r < rows; r += Grid.DimX)
        {
            long row = (long)r * cols;
            double dot = 0;
            for (int c = Group.IdxX; c < cols; c += Group.DimX) dot += (double)dy[row + c] * w[c] * x[row + c];
            dot = DeviceMath.GroupSumD(dot, scratch);
            double rs = rstd[r];
            double k = rs * rs * rs / cols * dot;
            for (int c = Group.IdxX; c < cols; c += Group.DimX) dx[row + c] = (float)(rs * w[c] * dy[row + c] - x[row + c] * k);
        }
    }

    /// <summary>dw_c = Σ_rows dy_c·x_c·r.</summary>
    private static void RmsNormBackwardDwKernel(Index1D c, ArrayView<float> x, ArrayView<float> rstd, ArrayView<float> dy,
        ArrayView<float> dw, int rows, int cols)
    {
        float s = 0f;
        for (int r = 0; r < rows; r++)
        {
            long at = (long)r * cols + c;
            s += dy[at] * x[at] * rstd[r];
        }
        dw[c] = s;
    }

    // ---------------------------------------------------------------- cross-entropy

    public void CrossEntropy(float* logits, long* targets, float* loss, float* lse, int rows, int V, long ignoreIndex)
    {
        if (rows == 0) return;
        lock (_backend.Sync)
            (_crossEntropy ??= _acc.LoadStreamKernel<ArrayView<float>, ArrayView<long>, ArrayView<float>, ArrayView<float>, int, int, long>(CrossEntropyKernel))(
                RowConfig(rows), F(logits), L(targets), F(loss), F(lse), rows, V, ignoreIndex);
    }

    /// <summary>logits: [rows, V]; lse[r] = logsumexp(logits[r]) (NaN if any logit is NaN); loss[r] = lse[r] − logits[r, t].</summary>
    private static void CrossEntropyKernel(ArrayView<float> logits, ArrayView<long> targets, ArrayView<float> loss,
        ArrayView<float> lse, int rows, int V, long ignoreIndex)
    {
        var scratch = SharedMemory.Allocate<float>(DeviceMath.MaxWarps);
        for (int r = Grid.IdxX; r < rows; r += Grid.DimX)
        {
            long row = (long)r * V;
            float m = float.NegativeInfinity;
            for (int c = Group.IdxX; c < V; c += Group.DimX) m = DeviceMath.MaxNaN(m, logits[row + c]);
            m = DeviceMath.GroupMax(m, scratch);
            float s = 0f;
            // All −∞ (or empty): lse = −∞, without the NaN of −∞ − (−∞).
            bool finiteMax = m != float.NegativeInfinity;
            for (int c = Group.IdxX; c < V; c += Group.DimX) s += finiteMax ? MathF.Exp(logits[row + c] - m) : 0f;
            s = DeviceMath.GroupSum(s, scratch);
            if (Group.IsFirstThread)
            {
                float l = finiteMax ? m + MathF.Log(s) : m;
                lse[r] = l;
                long t = targets[r];
                loss[r] = t == ignoreIndex ? 0f : l - logits[row + t];
            }
        }
    }

    public void CrossEntropyBackward(float* logits, float* lse, long* targets, float* dloss, float* dlogits,
        int rows, int V, long ignoreIndex)
    {
        long n = (long)rows * V;
        if (n == 0) return;
        lock (_backend.Sync)
            (_crossEntropyBack ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<long>, ArrayView<float>, ArrayView<float>, int, long>(CrossEntropyBackwardKernel))(
                Extent(n), F(logits), F(lse), L(targets), F(dloss), F(dlogits), V, ignoreIndex);
    }

    /// <summary>dlogits[r, c] = (exp(logits[r, c] − lse[r]) − [c == t]) · dloss[r]; 0 on ignored rows.</summary>
    private static void CrossEntropyBackwardKernel(Index1D i, ArrayView<float> logits, ArrayView<float> lse, ArrayView<long> targets,
        ArrayView<float> dloss, ArrayView<float> dlogits, int V, long ignoreIndex)
    {
        int r = i / V, c = i - r * V;
        long t = targets[r];
        dlogits[i] = t == ignoreIndex ? 0f : (MathF.Exp(logits[i] - lse[r]) - (c == t ? 1f : 0f)) * dloss[r];
    }

    // ---------------------------------------------------------------- top-k

    public void TopK(float* x, float* values, long* indices, int rows, int cols, int k)
    {
        if (k < 0 || k > cols) throw new ArgumentOutOfRangeException(nameof(k), k, "must be in [0, cols]");
        if ((long)rows * k == 0) return;
        lock (_backend.Sync)
            (_topK ??= _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<long>, int, int, int>(TopKKernel))(
                RowConfig(rows), F(x), F(values), L(indices), rows, cols, k);
    }

    /// <summary>
    /// x: [rows, cols] → values, indices: [rows, k]. Pick j is the element ranking first among those ranking
    /// strictly after pick j−1 (the order is total: value, NaN largest, then index), so k group arg-reductions
    /// find the k best in order with no scratch memory and no sorting.
    /// </summary>
    private static void TopKKernel(ArrayView<float> x, ArrayView<float> values, ArrayView<long> indices, int rows, int cols, int k)
    {
        var sv = SharedMemory.Allocate<float>(DeviceMath.MaxWarps);
        var si = SharedMemory.Allocate<int>(DeviceMath.MaxWarps);
        for (int r = Grid.IdxX; r < rows; r += Grid.DimX)
        {
            long row = (long)r * cols;
            float prevV = 0f;
            int prevI = -1;
            for (int j = 0; j < k; j++)
            {
                float best = float.NegativeInfinity;
                int bi = int.MaxValue;
                for (int c = Group.IdxX; c < cols; c += Group.DimX)
                {
                    float v = x[row + c];
                    bool eligible = prevI < 0 || DeviceMath.RanksBefore(prevV, prevI, v, c);
                    if (eligible && DeviceMath.RanksBefore(v, c, best, bi)) { best = v; bi = c; }
                }
                DeviceMath.GroupArgBest(ref best, ref bi, sv, si);
                if (Group.IsFirstThread)
                {
                    values[(long)r * k + j] = best;
                    indices[(long)r * k + j] = bi;
                }
                prevV = best;
                prevI = bi;
            }
        }
    }
}
