// Source: ggml's test-backend-ops: every backend op checked against a reference at awkward sizes.
namespace NativeReasoner.Kernels.Verification;

// The row-wise family: softmax, RMSNorm, RoPE, cross-entropy, SiLU·mul, log-softmax-gather (forward and
// backward), and the CUDA backend's fused GRPO token loss. Column counts cover both group shapes of the CUDA
// kernels (≤ 1024: a warp per row; larger: a block per row) and both load widths (multiples of 4 take the
// 16-byte path, the odd/prime ones the scalar path; "misaligned" cases offset the pointers by one float); row
// counts 1, 3 and 129 (more rows than the emulator's grid has groups, so the grid-stride loops wrap).
public static unsafe partial class KernelChecks
{
    private static readonly int[] RowCols = [1, 4, 7, 31, 64, 257, 1024, 1031, 4096, 4099];
    private static readonly int[] RowRows = [1, 3, 129];

    /// <summary>
    /// Row counts for a column count: 1, 3, 129; 17 instead of 129 for rows over 2048 columns, where the emulator
    /// (one fiber per thread, a rendezvous per shuffle) would take seconds — 17 rows still outnumber the
    /// emulator's 16 resident row-blocks, so the grid-stride loop wraps; the GPU runs the same sizes.
    /// </summary>
    private static int[] RowRowsFor(int cols) => cols > 2048 ? [1, 3, 17] : RowRows;

    /// <summary>fp32 tolerance of the row ops: float sums of ≤ a few thousand terms against double ones.</summary>
    private const double RowTol = 1e-5;

    static partial void AddRows(List<KernelCheck> list)
    {
        AddSoftmaxChecks(list);
        AddRmsNormChecks(list);
        AddRopeChecks(list);
        AddCrossEntropyChecks(list);
        AddSiluMulChecks(list);
        AddLogSoftmaxGatherChecks(list);
        AddGrpoChecks(list);
    }

    // ---------------------------------------------------------------- helpers

    /// <summary>
    /// Rows that exercise the reference's defined non-finite behaviour, cols ≥ 4 each: a plain row, a row with
    /// a NaN (all-NaN result), a row with +∞ (NaN logsumexp), a row half −∞ (those entries get probability 0),
    /// a row of only −∞ (logsumexp −∞, softmax NaN), and a row of ±80 logits.
    /// </summary>
    private static float[] SpecialRows(KernelCheckContext ctx, int cols, out int rows)
    {
        rows = 6;
        var x = ctx.Rand((long)rows * cols, -3f, 3f);
        x[1 * cols + ctx.Rng.Next(cols)] = float.NaN;
        x[2 * cols + ctx.Rng.Next(cols)] = float.PositiveInfinity;
        for (int c = 0; c < cols; c += 2) x[3 * cols + c] = float.NegativeInfinity;
        for (int c = 0; c < cols; c++) x[4 * cols + c] = float.NegativeInfinity;
        for (int c = 0; c < cols; c++) x[5 * cols + c] = ctx.Rng.Next(2) == 0 ? -80f + (float)ctx.Rng.NextDouble() : 80f - (float)ctx.Rng.NextDouble();
        return x;
    }

    /// <summary>Uploads host data at a 4-byte (not 16-byte) aligned address: one float past an aligned start.</summary>
    private static float* UpMisaligned(KernelCheckContext ctx, float[] host)
    {
        var padded = new float[host.Length + 1];
        Array.Copy(host, 0, padded, 1, host.Length);
        return ctx.Up(padded) + 1;
    }

    private static float* GarbageMisaligned(KernelCheckContext ctx, long n) => ctx.Garbage<float>(n + 1) + 1;

    /// <summary>
    /// <see cref="KernelCheckContext.Close"/> with the error taken relative to max(‖expected‖, ‖floor‖): for outputs
    /// that are small differences of larger terms (a gradient row g·(onehot − p) at V = 1, where 1 − p = 0 up to
    /// rounding; RMSNorm's dx at cols = 1, r·w·dy·(1 − x²r²)), rounding is relative to those terms, so they are
    /// the scale. floor is the vector of the cancelling terms' size; appended to both sides it adds ‖floor‖² to
    /// the denominator and nothing to the difference.
    /// </summary>
    private static void CloseFloor(KernelCheckContext ctx, float[] actual, float[] expected, double floor, double tol, string what)
    {
        float f = (float)floor;
        ctx.Close([.. actual, f], [.. expected, f], tol, what);
    }

    private static double Norm(ReadOnlySpan<float> a)
    {
        double s = 0;
        foreach (float v in a) s += (double)v * v;
        return Math.Sqrt(s);
    }

    private static long[] RandomIds(KernelCheckContext ctx, int rows, int V)
    {
        var ids = new long[rows];
        for (int r = 0; r < rows; r++) ids[r] = ctx.Rng.Next(V);
        return ids;
    }

    // ---------------------------------------------------------------- softmax
    private static void SoftmaxCase(KernelCheckContext ctx, float[] x, int rows, int cols, bool log, string what, bool alias = false, bool misaligned = false)
    {
        long n = (long)rows * cols;
        var expected = new float[n];
        fixed (float* px = x, pe = expected) ctx.Ref.Softmax(px, pe, rows, cols, log);
        float* dx = misaligned ? UpMisaligned(ctx, x) : ctx.Up(x);
        float* dy = alias ? dx : misaligned ? GarbageMisaligned(ctx, n) : ctx.Garbage<float>(n);
        ctx.K.Softmax(dx, dy, rows, cols, log);
        ctx.Close(ctx.Down(dy, n), expected, RowTol, what);
    }

    private static void SoftmaxBackwardCase(KernelCheckContext ctx, float[] x, int rows, int cols, bool log, string what)
    {
        long n = (long)rows * cols;
        var y = new float[n];
        fixed (float* px = x, py = y) ctx.Ref.Softmax(px, py, rows, cols, log);
        var dy = ctx.Rand(n);
        var expected = new float[n];
        fixed (float* py = y, pg = dy, pe = expected) ctx.Ref.SoftmaxBackward(py, pg, pe, rows, cols, log);
        float* dx = ctx.Garbage<float>(n);
        ctx.K.SoftmaxBackward(ctx.Up(y), ctx.Up(dy), dx, rows, cols, log);
        ctx.Close(ctx.Down(dx, n), expected, RowTol, what);
    }

    private static void AddSoftmaxChecks(List<KernelCheck> list)
    {
        foreach (bool log in new[] { false, true })
        {
            string op = log ? "log_softmax" : "softmax";
            foreach (int cols in RowCols)
                list.Add(new KernelCheck($"rows/{op}/c{cols}", ctx =>
                {
                    foreach (int rows in RowRowsFor(cols))
                        SoftmaxCase(ctx, ctx.Rand((long)rows * cols, -4f, 4f), rows, cols, log, $"{rows}x{cols}");
                    // y aliasing x, and ±80 logits (exp under/overflow without the max shift).
                    SoftmaxCase(ctx, ctx.Rand(3L * cols, -4f, 4f), 3, cols, log, $"3x{cols} in place", alias: true);
                    SoftmaxCase(ctx, ctx.Rand(3L * cols, -80f, 80f), 3, cols, log, $"3x{cols} ±80");
                }));
            list.Add(new KernelCheck($"rows/{op}/special", ctx =>
            {
                foreach (int cols in new[] { 37, 64, 1031 })
                    SoftmaxCase(ctx, SpecialRows(ctx, cols, out int rows), rows, cols, log, $"special rows, cols {cols}");
            }));
            list.Add(new KernelCheck($"rows/{op}/misaligned", ctx =>
            {
                foreach (int cols in new[] { 64, 4096 })
                    SoftmaxCase(ctx, ctx.Rand(5L * cols, -4f, 4f), 5, cols, log, $"5x{cols} misaligned", misaligned: true);
            }));
            foreach (int cols in RowCols)
                list.Add(new KernelCheck($"rows/{op}_bwd/c{cols}", ctx =>
                {
                    foreach (int rows in RowRowsFor(cols))
                        SoftmaxBackwardCase(ctx, ctx.Rand((long)rows * cols, -4f, 4f), rows, cols, log, $"{rows}x{cols}");
                }));
        }
        // Near one-hot rows: one logit 12 above the rest, so y_max = 1 − O(cols·e⁻¹²) and the other y ≈ 6e-6.
        // The gradient of the dominant entry is dy_i·(Σy − y_i) − Σ_(j≠i) dy_j·y_j, a difference of O(cols·6e-6)
        // terms: a float evaluation (y ⊙ (dy − Σdy⊙y)) misses by 4e-4 (cols 7) and 2e-5 (cols 64) relative, measured
        // on the emulator; the double evaluation the reference does keeps it at rounding level. (Much further from uniform, e.g. +30,
        // even double sums of ~1 leave 1e-16 absolute against a 1e-12 result, and no two summation orders agree.)
        list.Add(new KernelCheck("rows/softmax_bwd/onehot", ctx =>
        {
            foreach (int cols in new[] { 7, 64, 1031, 4096 })
            {
                int rows = 5;
                var x = ctx.Rand((long)rows * cols, -1f, 1f);
                for (int r = 0; r < rows; r++) x[(long)r * cols + ctx.Rng.Next(cols)] += 12f;
                SoftmaxBackwardCase(ctx, x, rows, cols, false, $"{rows}x{cols} near one-hot");
            }
        }));
    }

    // ---------------------------------------------------------------- RMSNorm
    private static void RmsNormCase(KernelCheckContext ctx, float[] x, int rows, int cols, string what, bool misaligned = false)
    {
        long n = (long)rows * cols;
        const float eps = 1e-6f;
        var w = ctx.Rand(cols, 0.5f, 1.5f);
        var y = new float[n];
        var rstd = new float[rows];
        fixed (float* px = x, pw = w, py = y, pr = rstd) ctx.Ref.RmsNorm(px, pw, py, pr, rows, cols, eps);
        float* dx = misaligned ? UpMisaligned(ctx, x) : ctx.Up(x);
        float* dy = misaligned ? GarbageMisaligned(ctx, n) : ctx.Garbage<float>(n);
        float* dr = ctx.Garbage<float>(rows);
        ctx.K.RmsNorm(dx, ctx.Up(w), dy, dr, rows, cols, eps);
        ctx.Close(ctx.Down(dy, n), y, RowTol, what + " y");
        ctx.Close(ctx.Down(dr, rows), rstd, RowTol, what + " rstd");
    }

    private static void RmsNormBackwardCase(KernelCheckContext ctx, int rows, int cols, string what)
    {
        long n = (long)rows * cols;
        var x = ctx.Rand(n, -2f, 2f);
        var w = ctx.Rand(cols, 0.5f, 1.5f);
        var y = new float[n];
        var rstd = new float[rows];
        fixed (float* px = x, pw = w, py = y, pr = rstd) ctx.Ref.RmsNorm(px, pw, py, pr, rows, cols, 1e-6f);
        var dy = ctx.Rand(n);
        var dxe = new float[n];
        var dwe = new float[cols];
        fixed (float* px = x, pw = w, pr = rstd, pg = dy, pdx = dxe, pdw = dwe) ctx.Ref.RmsNormBackward(px, pw, pr, pg, pdx, pdw, rows, cols);
        float* dx = ctx.Garbage<float>(n);
        float* dw = ctx.Garbage<float>(cols);
        ctx.K.RmsNormBackward(ctx.Up(x), ctx.Up(w), ctx.Up(rstd), ctx.Up(dy), dx, dw, rows, cols);
        // dx = r·w·dy − x·r³/cols·Σ dy·w·x: relative to the size of its first term (at cols = 1 the two cancel to
        // r·w·dy·eps/(x² + eps)).
        var first = new float[n];
        for (long i = 0; i < n; i++) first[i] = rstd[i / cols] * w[i % cols] * dy[i];
        CloseFloor(ctx, ctx.Down(dx, n), dxe, Norm(first), RowTol, what + " dx");
        ctx.Close(ctx.Down(dw, cols), dwe, RowTol, what + " dw");
    }

    private static void AddRmsNormChecks(List<KernelCheck> list)
    {
        foreach (int cols in RowCols)
        {
            list.Add(new KernelCheck($"rows/rmsnorm/c{cols}", ctx =>
            {
                foreach (int rows in RowRowsFor(cols)) RmsNormCase(ctx, ctx.Rand((long)rows * cols, -2f, 2f), rows, cols, $"{rows}x{cols}");
            }));
            list.Add(new KernelCheck($"rows/rmsnorm_bwd/c{cols}", ctx =>
            {
                foreach (int rows in RowRowsFor(cols)) RmsNormBackwardCase(ctx, rows, cols, $"{rows}x{cols}");
            }));
        }
        list.Add(new KernelCheck("rows/rmsnorm/special", ctx =>
        {
            // A NaN row (all NaN), a zero row (rstd = 1/√eps, y = 0), a +∞ row (rstd = 0, y NaN at the ∞, 0 elsewhere).
            foreach (int cols in new[] { 37, 64, 1031 })
            {
                var x = ctx.Rand(4L * cols, -2f, 2f);
                x[cols + ctx.Rng.Next(cols)] = float.NaN;
                Array.Clear(x, 2 * cols, cols);
                x[3 * cols + ctx.Rng.Next(cols)] = float.PositiveInfinity;
                RmsNormCase(ctx, x, 4, cols, $"special rows, cols {cols}");
            }
        }));
        list.Add(new KernelCheck("rows/rmsnorm/misaligned", ctx =>
        {
            foreach (int cols in new[] { 64, 4096 }) RmsNormCase(ctx, ctx.Rand(5L * cols, -2f, 2f), 5, cols, $"5x{cols} misaligned", misaligned: true);
        }));
        // Long rows whose per-block dw partial row no longer fits 48 KiB of shared memory (the CUDA kernel
        // accumulates it in global scratch instead), and many rows per partial.
        list.Add(new KernelCheck("rows/rmsnorm_bwd/wide", ctx =>
        {
            RmsNormBackwardCase(ctx, 3, 13001, "3x13001");
            RmsNormBackwardCase(ctx, 2, 12800, "2x12800");
        }));
        list.Add(new KernelCheck("rows/rmsnorm_bwd/tall", ctx => RmsNormBackwardCase(ctx, 1500, 33, "1500x33")));
        list.Add(new KernelCheck("rows/rmsnorm_bwd/norows", ctx =>
        {
            // dw of no rows is an empty sum: zeros, not whatever the buffer held.
            float* dw = ctx.Garbage<float>(7);
            float* any = ctx.Garbage<float>(7);
            ctx.K.RmsNormBackward(any, ctx.Up(ctx.Rand(7)), any, any, any, dw, 0, 7);
            ctx.Exact<float>(ctx.Down(dw, 7), new float[7], "dw of 0 rows");
        }));
    }

    // ---------------------------------------------------------------- RoPE
    private static void AddRopeChecks(List<KernelCheck> list)
    {
        // [outer, T, mid, D]: single pair, small odd heads, a D/2 that is odd, more pairs than the grid.
        int[][] shapes = [[1, 1, 1, 2], [2, 3, 5, 8], [3, 7, 4, 64], [1, 129, 3, 130], [2, 33, 2, 18]];
        foreach (bool inverse in new[] { false, true })
            foreach (var s in shapes)
            {
                int outer = s[0], T = s[1], mid = s[2], D = s[3];
                list.Add(new KernelCheck($"rows/rope/{(inverse ? "inverse" : "forward")}/{outer}x{T}x{mid}x{D}", ctx =>
                {
                    long n = (long)outer * T * mid * D;
                    var x = ctx.Rand(n, -2f, 2f);
                    var cos = new float[T * D / 2];
                    var sin = new float[T * D / 2];
                    for (int i = 0; i < cos.Length; i++)
                    {
                        double a = ctx.Rng.NextDouble() * 2 * Math.PI;
                        cos[i] = (float)Math.Cos(a);
                        sin[i] = (float)Math.Sin(a);
                    }
                    var expected = new float[n];
                    fixed (float* px = x, pc = cos, ps = sin, pe = expected) ctx.Ref.Rope(px, pc, ps, pe, outer, T, mid, D, inverse);
                    float* dc = ctx.Up(cos), ds = ctx.Up(sin);
                    float* y = ctx.Garbage<float>(n);
                    ctx.K.Rope(ctx.Up(x), dc, ds, y, outer, T, mid, D, inverse);
                    ctx.Close(ctx.Down(y, n), expected, RowTol, "out of place");
                    float* xi = ctx.Up(x);
                    ctx.K.Rope(xi, dc, ds, xi, outer, T, mid, D, inverse);
                    ctx.Close(ctx.Down(xi, n), expected, RowTol, "in place (y aliasing x)");
                    float* xm = UpMisaligned(ctx, x), ym = GarbageMisaligned(ctx, n);
                    ctx.K.Rope(xm, dc, ds, ym, outer, T, mid, D, inverse);
                    ctx.Close(ctx.Down(ym, n), expected, RowTol, "misaligned");
                }));
            }
        list.Add(new KernelCheck("rows/rope/roundtrip", ctx =>
        {
            // inverse undoes forward (the backward of a rotation is the opposite rotation).
            int outer = 2, T = 5, mid = 3, D = 16;
            long n = (long)outer * T * mid * D;
            var x = ctx.Rand(n);
            var cos = new float[T * D / 2];
            var sin = new float[T * D / 2];
            for (int i = 0; i < cos.Length; i++)
            {
                double a = ctx.Rng.NextDouble() * 2 * Math.PI;
                cos[i] = (float)Math.Cos(a);
                sin[i] = (float)Math.Sin(a);
            }
            float* dx = ctx.Up(x), dc = ctx.Up(cos), ds = ctx.Up(sin);
            ctx.K.Rope(dx, dc, ds, dx, outer, T, mid, D, false);
            ctx.K.Rope(dx, dc, ds, dx, outer, T, mid, D, true);
            ctx.Close(ctx.Down(dx, n), x, 1e-6, "inverse(forward(x))");
        }));
    }

    // ---------------------------------------------------------------- cross-entropy
    private const long IgnoreIndex = -100;

    private static void CrossEntropyCase(KernelCheckContext ctx, float[] logits, int rows, int V, string what)
    {
        var targets = RandomIds(ctx, rows, V);
        for (int r = 0; r < rows; r++) if (ctx.Rng.Next(4) == 0) targets[r] = IgnoreIndex;
        var loss = new float[rows];
        var lse = new float[rows];
        fixed (float* pl = logits, ploss = loss, plse = lse) fixed (long* pt = targets) ctx.Ref.CrossEntropy(pl, pt, ploss, plse, rows, V, IgnoreIndex);
        float* dl = ctx.Up(logits);
        long* dt = ctx.Up(targets);
        float* oloss = ctx.Garbage<float>(rows), olse = ctx.Garbage<float>(rows);
        ctx.K.CrossEntropy(dl, dt, oloss, olse, rows, V, IgnoreIndex);
        ctx.Close(ctx.Down(oloss, rows), loss, RowTol, what + " loss");
        ctx.Close(ctx.Down(olse, rows), lse, RowTol, what + " lse");

        // Backward from the reference lse (only finite rows make sense to differentiate).
        var dloss = ctx.Rand(rows, 0.1f, 1f);
        long n = (long)rows * V;
        var expected = new float[n];
        fixed (float* pl = logits, plse = lse, pg = dloss, pe = expected) fixed (long* pt = targets)
            ctx.Ref.CrossEntropyBackward(pl, plse, pt, pg, pe, rows, V, IgnoreIndex);
        float* dd = ctx.Garbage<float>(n);
        ctx.K.CrossEntropyBackward(dl, ctx.Up(lse), dt, ctx.Up(dloss), dd, rows, V, IgnoreIndex);
        // Row r of dlogits is dloss[r]·(p − onehot): relative to ‖dloss‖ (at V = 1 it is 0 up to rounding).
        CloseFloor(ctx, ctx.Down(dd, n), expected, Norm(dloss), RowTol, what + " dlogits");
    }

    private static void AddCrossEntropyChecks(List<KernelCheck> list)
    {
        foreach (int V in RowCols)
            list.Add(new KernelCheck($"rows/cross_entropy/c{V}", ctx =>
            {
                foreach (int rows in RowRowsFor(V)) CrossEntropyCase(ctx, ctx.Rand((long)rows * V, -4f, 4f), rows, V, $"{rows}x{V}");
                CrossEntropyCase(ctx, ctx.Rand(3L * V, -80f, 80f), 3, V, $"3x{V} ±80");
            }));
        list.Add(new KernelCheck("rows/cross_entropy/vocab", ctx => CrossEntropyCase(ctx, ctx.Rand(2L * 129280, -8f, 8f), 2, 129280, "2x129280")));
        list.Add(new KernelCheck("rows/cross_entropy/special", ctx =>
        {
            foreach (int V in new[] { 37, 64, 1031 })
            {
                var x = SpecialRows(ctx, V, out int rows);
                var targets = RandomIds(ctx, rows, V);
                targets[0] = IgnoreIndex;
                var loss = new float[rows];
                var lse = new float[rows];
                fixed (float* pl = x, ploss = loss, plse = lse) fixed (long* pt = targets) ctx.Ref.CrossEntropy(pl, pt, ploss, plse, rows, V, IgnoreIndex);
                float* oloss = ctx.Garbage<float>(rows), olse = ctx.Garbage<float>(rows);
                ctx.K.CrossEntropy(ctx.Up(x), ctx.Up(targets), oloss, olse, rows, V, IgnoreIndex);
                ctx.Close(ctx.Down(oloss, rows), loss, RowTol, $"special rows V {V} loss");
                ctx.Close(ctx.Down(olse, rows), lse, RowTol, $"special rows V {V} lse");
            }
        }));
        list.Add(new KernelCheck("rows/cross_entropy/misaligned", ctx =>
        {
            int rows = 5, V = 64;
            long n = (long)rows * V;
            var x = ctx.Rand(n, -4f, 4f);
            var targets = RandomIds(ctx, rows, V);
            targets[2] = IgnoreIndex;
            var loss = new float[rows];
            var lse = new float[rows];
            fixed (float* pl = x, ploss = loss, plse = lse) fixed (long* pt = targets) ctx.Ref.CrossEntropy(pl, pt, ploss, plse, rows, V, IgnoreIndex);
            var dloss = ctx.Rand(rows);
            var expected = new float[n];
            fixed (float* pl = x, plse = lse, pg = dloss, pe = expected) fixed (long* pt = targets)
                ctx.Ref.CrossEntropyBackward(pl, plse, pt, pg, pe, rows, V, IgnoreIndex);
            float* dl = UpMisaligned(ctx, x);
            long* dt = ctx.Up(targets);
            float* oloss = ctx.Garbage<float>(rows), olse = ctx.Garbage<float>(rows), dd = GarbageMisaligned(ctx, n);
            ctx.K.CrossEntropy(dl, dt, oloss, olse, rows, V, IgnoreIndex);
            ctx.K.CrossEntropyBackward(dl, ctx.Up(lse), dt, ctx.Up(dloss), dd, rows, V, IgnoreIndex);
            ctx.Close(ctx.Down(oloss, rows), loss, RowTol, "loss");
            ctx.Close(ctx.Down(olse, rows), lse, RowTol, "lse");
            CloseFloor(ctx, ctx.Down(dd, n), expected, Norm(dloss), RowTol, "dlogits");
        }));
    }

    // ---------------------------------------------------------------- SiLU·mul
    private static readonly long[] SiluSizes = [1, 7, 31, 257, 1031, 4096, 4099, 70001];

    private static void AddSiluMulChecks(List<KernelCheck> list)
    {
        foreach (long n in SiluSizes)
        {
            list.Add(new KernelCheck($"rows/silu_mul/n{n}", ctx =>
            {
                var g = ctx.Rand(n, -8f, 8f);
                var u = ctx.Rand(n, -2f, 2f);
                var expected = new float[n];
                fixed (float* pg = g, pu = u, pe = expected) ctx.Ref.SiluMul(pg, pu, pe, n);
                float* y = ctx.Garbage<float>(n);
                ctx.K.SiluMul(ctx.Up(g), ctx.Up(u), y, n);
                ctx.Close(ctx.Down(y, n), expected, RowTol, "y");
                float* ga = ctx.Up(g);
                ctx.K.SiluMul(ga, ctx.Up(u), ga, n);
                ctx.Close(ctx.Down(ga, n), expected, RowTol, "y aliasing gate");
                float* ua = ctx.Up(u);
                ctx.K.SiluMul(ctx.Up(g), ua, ua, n);
                ctx.Close(ctx.Down(ua, n), expected, RowTol, "y aliasing up");
                float* ym = GarbageMisaligned(ctx, n);
                ctx.K.SiluMul(UpMisaligned(ctx, g), ctx.Up(u), ym, n);
                ctx.Close(ctx.Down(ym, n), expected, RowTol, "misaligned");
            }));
            list.Add(new KernelCheck($"rows/silu_mul_bwd/n{n}", ctx =>
            {
                var g = ctx.Rand(n, -8f, 8f);
                var u = ctx.Rand(n, -2f, 2f);
                var d = ctx.Rand(n);
                var eg = new float[n];
                var eu = new float[n];
                fixed (float* pg = g, pu = u, pd = d, peg = eg, peu = eu) ctx.Ref.SiluMulBackward(pg, pu, pd, peg, peu, n);
                float* dg = ctx.Garbage<float>(n), du = ctx.Garbage<float>(n);
                ctx.K.SiluMulBackward(ctx.Up(g), ctx.Up(u), ctx.Up(d), dg, du, n);
                ctx.Close(ctx.Down(dg, n), eg, RowTol, "dgate");
                ctx.Close(ctx.Down(du, n), eu, RowTol, "dup");
                // Outputs aliasing inputs exactly, three ways.
                {
                    float* bg = ctx.Up(g), bu = ctx.Up(u);
                    ctx.K.SiluMulBackward(bg, bu, ctx.Up(d), bg, bu, n);
                    ctx.Close(ctx.Down(bg, n), eg, RowTol, "dgate aliasing gate");
                    ctx.Close(ctx.Down(bu, n), eu, RowTol, "dup aliasing up");
                }
                {
                    float* bg = ctx.Up(g), bu = ctx.Up(u), bd = ctx.Up(d);
                    ctx.K.SiluMulBackward(bg, bu, bd, bu, bd, n);
                    ctx.Close(ctx.Down(bu, n), eg, RowTol, "dgate aliasing up");
                    ctx.Close(ctx.Down(bd, n), eu, RowTol, "dup aliasing dy");
                }
                {
                    float* bg = ctx.Up(g), bd = ctx.Up(d);
                    ctx.K.SiluMulBackward(bg, ctx.Up(u), bd, bd, bg, n);
                    ctx.Close(ctx.Down(bd, n), eg, RowTol, "dgate aliasing dy");
                    ctx.Close(ctx.Down(bg, n), eu, RowTol, "dup aliasing gate");
                }
                float* mg = GarbageMisaligned(ctx, n), mu = ctx.Garbage<float>(n);
                ctx.K.SiluMulBackward(ctx.Up(g), UpMisaligned(ctx, u), ctx.Up(d), mg, mu, n);
                ctx.Close(ctx.Down(mg, n), eg, RowTol, "misaligned dgate");
                ctx.Close(ctx.Down(mu, n), eu, RowTol, "misaligned dup");
            }));
        }
    }

    // ---------------------------------------------------------------- log-softmax + gather
    private static void LogSoftmaxGatherCase(KernelCheckContext ctx, float[] logits, int rows, int V, float invT, string what,
        bool backward = true, bool misaligned = false)
    {
        var ids = RandomIds(ctx, rows, V);
        var logp = new float[rows];
        var lse = new float[rows];
        fixed (float* pl = logits, pp = logp, pe = lse) fixed (long* pi = ids) ctx.Ref.LogSoftmaxGather(pl, pi, pp, pe, rows, V, invT);
        float* dl = misaligned ? UpMisaligned(ctx, logits) : ctx.Up(logits);
        long* di = ctx.Up(ids);
        float* op = ctx.Garbage<float>(rows), oe = ctx.Garbage<float>(rows);
        ctx.K.LogSoftmaxGather(dl, di, op, oe, rows, V, invT);
        ctx.Close(ctx.Down(op, rows), logp, RowTol, what + " logp");
        ctx.Close(ctx.Down(oe, rows), lse, RowTol, what + " lse");
        if (!backward) return;
        long n = (long)rows * V;
        var dlogp = ctx.Rand(rows);
        var expected = new float[n];
        fixed (float* pl = logits, pe = lse, pg = dlogp, pd = expected) fixed (long* pi = ids)
            ctx.Ref.LogSoftmaxGatherBackward(pl, pi, pe, pg, pd, rows, V, invT);
        float* dd = misaligned ? GarbageMisaligned(ctx, n) : ctx.Garbage<float>(n);
        ctx.K.LogSoftmaxGatherBackward(dl, di, ctx.Up(lse), ctx.Up(dlogp), dd, rows, V, invT);
        // Row r of dlogits is invT·dlogp[r]·(onehot − p): relative to invT·‖dlogp‖ (at V = 1 it is 0 up to rounding).
        CloseFloor(ctx, ctx.Down(dd, n), expected, invT * Norm(dlogp), RowTol, what + " dlogits");
    }

    private static void AddLogSoftmaxGatherChecks(List<KernelCheck> list)
    {
        foreach (int V in RowCols)
            list.Add(new KernelCheck($"rows/log_softmax_gather/c{V}", ctx =>
            {
                foreach (int rows in RowRowsFor(V)) LogSoftmaxGatherCase(ctx, ctx.Rand((long)rows * V, -4f, 4f), rows, V, 1f, $"{rows}x{V}");
                LogSoftmaxGatherCase(ctx, ctx.Rand(3L * V, -4f, 4f), 3, V, 1f / 0.7f, $"3x{V} T=0.7");
                LogSoftmaxGatherCase(ctx, ctx.Rand(3L * V, -80f, 80f), 3, V, 1f, $"3x{V} ±80");
                LogSoftmaxGatherCase(ctx, ctx.Rand(3L * V, -80f, 80f), 3, V, 1f / 0.6f, $"3x{V} ±80 T=0.6");
            }));
        list.Add(new KernelCheck("rows/log_softmax_gather/vocab", ctx =>
            LogSoftmaxGatherCase(ctx, ctx.Rand(2L * 129280, -8f, 8f), 2, 129280, 1f / 0.9f, "2x129280 T=0.9")));
        list.Add(new KernelCheck("rows/log_softmax_gather/special", ctx =>
        {
            foreach (int V in new[] { 37, 64, 1031 })
                LogSoftmaxGatherCase(ctx, SpecialRows(ctx, V, out int rows), rows, V, 1f / 0.8f, $"special rows V {V}", backward: false);
        }));
        list.Add(new KernelCheck("rows/log_softmax_gather/misaligned", ctx =>
            LogSoftmaxGatherCase(ctx, ctx.Rand(5L * 64, -4f, 4f), 5, 64, 1f, "5x64 misaligned", misaligned: true)));
    }

    // ---------------------------------------------------------------- GRPO token loss (fused where a backend has it)
    /// <summary>One GRPO token-loss problem: inputs on the host, and the reference logp / lse of its logits.</summary>
    private sealed class GrpoCase
    {
        public required float[] Logits;
        public required long[] Ids;
        public float[]? Old, Ref, Mask, Weight;
        public required float[] Advantages;
        public required int Rows, V;
        public required GrpoTokenLossOptions Options;
        public required float[] RefLogp, RefLse;
        public bool WantLogp = true, WantGrad = true;
    }

    /// <summary>
    /// A random case: logits U(−range, range); old log-probs set from the reference logp so that every ratio ρ
    /// lies at least <paramref name="margin"/> from the clip boundaries (a float-rounding difference between
    /// backends cannot flip a clip decision), so both sides of the clip range and the inside are all hit;
    /// about one row in four masked out.
    /// </summary>
    private static GrpoCase MakeGrpoCase(KernelCheckContext ctx, int B, int T, int V, float range, float temperature, float beta,
        bool withOld = true, bool withMask = true, bool withWeight = true, float margin = 0.02f)
    {
        int rows = B * T;
        var o = new GrpoTokenLossOptions(temperature, beta, 0.2f, 0.28f, T);
        var logits = ctx.Rand((long)rows * V, -range, range);
        var ids = RandomIds(ctx, rows, V);
        var logp = new float[rows];
        var lse = new float[rows];
        fixed (float* pl = logits, pp = logp, pe = lse) fixed (long* pi = ids) ctx.Ref.LogSoftmaxGather(pl, pi, pp, pe, rows, V, o.InvTemperature);
        var adv = ctx.Rand(B, -1.5f, 1.5f);
        // One sequence with A = 0 (its tokens carry only the KL term). Not when it is the only one: a KL-only loss
        // β·(e^d − d − 1) ≈ β·d²/2 has relative rounding Δlogp/d, which is the conditioning, not the kernel.
        if (B > 1) adv[ctx.Rng.Next(B)] = 0f;
        float[]? old = null, refp = null, mask = null, weight = null;
        if (withOld)
        {
            old = new float[rows];
            double lo = 1 - o.EpsilonLow, hi = 1 + o.EpsilonHigh;
            for (int r = 0; r < rows; r++)
            {
                double rho;
                do rho = 0.5 + 1.2 * ctx.Rng.NextDouble();
                while (Math.Abs(rho - lo) < margin || Math.Abs(rho - hi) < margin);
                old[r] = (float)(logp[r] - Math.Log(rho));
            }
        }
        if (beta != 0f)
        {
            refp = new float[rows];
            for (int r = 0; r < rows; r++) refp[r] = logp[r] + (float)(ctx.Rng.NextDouble() - 0.5);
        }
        if (withMask)
        {
            mask = new float[rows];
            for (int r = 0; r < rows; r++) mask[r] = ctx.Rng.Next(4) == 0 ? 0f : 1f;
        }
        if (withWeight) weight = ctx.Rand(rows, 0.1f, 1f);
        return new GrpoCase
        {
            Logits = logits, Ids = ids, Old = old, Ref = refp, Mask = mask, Weight = weight, Advantages = adv, Rows = rows, V = V,
            Options = o, RefLogp = logp, RefLse = lse,
        };
    }

    /// <summary>
    /// GrpoLoss.Compute's per-token objective in double (the oracle): l and dl/dlogp at one token. Ties of the
    /// min take the unclipped term; the clamp's range is inclusive (the gradient passes at the boundaries).
    /// </summary>
    private static void GrpoObjective(double lp, double old, double refLogp, double A, in GrpoTokenLossOptions o,
        out double loss, out double dlp)
    {
        double rho = Math.Exp(lp - old);
        double lo = 1 - (double)o.EpsilonLow, hi = 1 + (double)o.EpsilonHigh;
        bool below = rho < lo, above = rho > hi;
        double c2 = below ? lo : above ? hi : rho;
        double l1 = rho * A, l2 = c2 * A;
        bool first = l1 <= l2;
        loss = -(first ? l1 : l2);
        dlp = first || (!below && !above) ? -A * rho : 0.0;
        if (o.Beta != 0f)
        {
            double d = refLogp - lp, ed = Math.Exp(d);
            loss += o.Beta * (ed - d - 1);
            dlp += o.Beta * (1 - ed);
        }
    }

    /// <summary>
    /// The per-token loss and the dlogp the kernel must back-propagate, from given logp (mask 0: loss 0, no
    /// gradient). Returns (loss [rows], dlogp [rows]) with dlogp = weight · mask · dl/dlogp.
    /// </summary>
    private static (float[] Loss, float[] DLogp) GrpoTokenTerms(GrpoCase g, float[] logp)
    {
        var loss = new float[g.Rows];
        var dlogp = new float[g.Rows];
        for (int r = 0; r < g.Rows; r++)
        {
            double m = g.Mask?[r] ?? 1.0;
            if (m == 0) continue;
            double lp = logp[r];
            GrpoObjective(lp, g.Old?[r] ?? lp, g.Ref?[r] ?? 0.0, g.Advantages[r / g.Options.TokensPerSequence], g.Options, out double l, out double d);
            loss[r] = (float)(m * l);
            dlogp[r] = (float)((g.Weight?[r] ?? 1.0) * m * d);
        }
        return (loss, dlogp);
    }

    /// <summary>The expected (loss, logp, dlogits): ReferenceKernels.LogSoftmaxGather(Backward) around the oracle.</summary>
    private static (float[] Loss, float[] Logp, float[] DLogits, float[] DLogp) GrpoExpected(KernelCheckContext ctx, GrpoCase g)
    {
        var (loss, dlogp) = GrpoTokenTerms(g, g.RefLogp);
        var dlogits = new float[(long)g.Rows * g.V];
        fixed (float* pl = g.Logits, pe = g.RefLse, pg = dlogp, pd = dlogits) fixed (long* pi = g.Ids)
            ctx.Ref.LogSoftmaxGatherBackward(pl, pi, pe, pg, pd, g.Rows, g.V, g.Options.InvTemperature);
        for (int r = 0; r < g.Rows; r++)
            if ((g.Mask?[r] ?? 1f) == 0f) Array.Clear(dlogits, r * g.V, g.V); // masked rows: exactly zero, whatever their logits
        return (loss, g.RefLogp, dlogits, dlogp);
    }

    /// <summary>
    /// Runs the case on the backend under test: its fused <see cref="IGrpoTokenLoss"/> (CUDA, CPU, ILGPU); elsewhere
    /// (the reference) the unfused path the fusion replaces (the backend's LogSoftmaxGather → per-token terms →
    /// LogSoftmaxGatherBackward). logp / dlogits are null when not wanted.
    /// </summary>
    private static (float[] Loss, float[]? Logp, float[]? DLogits) GrpoRun(KernelCheckContext ctx, GrpoCase g, float[]? logitsOverride = null,
        bool misaligned = false)
    {
        var logits = logitsOverride ?? g.Logits;
        int rows = g.Rows, V = g.V;
        long n = (long)rows * V;
        float* dl = misaligned ? UpMisaligned(ctx, logits) : ctx.Up(logits);
        long* di = ctx.Up(g.Ids);
        float* Opt(float[]? a) => a == null ? null : ctx.Up(a);
        if (ctx.K is IGrpoTokenLoss fused)
        {
            float* loss = ctx.Garbage<float>(rows);
            float* logp = g.WantLogp ? ctx.Garbage<float>(rows) : null;
            float* dd = !g.WantGrad ? null : misaligned ? GarbageMisaligned(ctx, n) : ctx.Garbage<float>(n);
            fused.GrpoTokenLoss(dl, di, Opt(g.Old), Opt(g.Ref), ctx.Up(g.Advantages), Opt(g.Mask), Opt(g.Weight), loss,
                logp, dd, rows, V, g.Options);
            return (ctx.Down(loss, rows), g.WantLogp ? ctx.Down(logp, rows) : null, g.WantGrad ? ctx.Down(dd, n) : null);
        }
        float* lp = ctx.Garbage<float>(rows), lse = ctx.Garbage<float>(rows);
        ctx.K.LogSoftmaxGather(dl, di, lp, lse, rows, V, g.Options.InvTemperature);
        var logpHost = ctx.Down(lp, rows);
        var (tokenLoss, dlogp) = GrpoTokenTerms(g, logpHost);
        float[]? grad = null;
        if (g.WantGrad)
        {
            float* dd = misaligned ? GarbageMisaligned(ctx, n) : ctx.Garbage<float>(n);
            ctx.K.LogSoftmaxGatherBackward(dl, di, lse, ctx.Up(dlogp), dd, rows, V, g.Options.InvTemperature);
            grad = ctx.Down(dd, n);
            for (int r = 0; r < rows; r++)
                if ((g.Mask?[r] ?? 1f) == 0f) Array.Clear(grad, r * V, V);
        }
        return (tokenLoss, g.WantLogp ? logpHost : null, grad);
    }

    private static void GrpoCompare(KernelCheckContext ctx, GrpoCase g, string what, double tol = RowTol, bool misaligned = false)
    {
        var (eLoss, eLogp, eGrad, eDlogp) = GrpoExpected(ctx, g);
        var (loss, logp, grad) = GrpoRun(ctx, g, misaligned: misaligned);
        ctx.Close(loss, eLoss, tol, what + " loss");
        if (g.WantLogp) ctx.Close(logp!, eLogp, tol, what + " logp");
        // Row r of dlogits is invT·dlogp[r]·(onehot − p): relative to invT·‖dlogp‖ (at V = 1 it is 0 up to rounding).
        if (g.WantGrad) CloseFloor(ctx, grad!, eGrad, g.Options.InvTemperature * Norm(eDlogp), tol, what + " dlogits");
    }

    private static void AddGrpoChecks(List<KernelCheck> list)
    {
        foreach (int V in new[] { 1, 7, 64, 257, 1031, 4096, 4099 })
            list.Add(new KernelCheck($"rows/grpo/c{V}", ctx =>
            {
                // [B, T] = [3, 43]: 129 token rows; KL on, asymmetric clip (0.2 / 0.28), temperature 0.7.
                GrpoCompare(ctx, MakeGrpoCase(ctx, 3, 43, V, 4f, 0.7f, 0.04f), $"3x43x{V}");
                // One token, one sequence.
                GrpoCompare(ctx, MakeGrpoCase(ctx, 1, 1, V, 4f, 1f, 0.04f), $"1x1x{V}");
                // β = 0 (refLogp never read), no old log-probs (ρ ≡ 1), no mask, no weight.
                GrpoCompare(ctx, MakeGrpoCase(ctx, 2, 3, V, 4f, 1f, 0f, withOld: false, withMask: false, withWeight: false), $"2x3x{V} plain");
                // The loss alone: no logp, no gradient (masked rows skip their logits entirely).
                var lossOnly = MakeGrpoCase(ctx, 3, 5, V, 4f, 0.7f, 0.04f);
                lossOnly.WantLogp = false;
                lossOnly.WantGrad = false;
                GrpoCompare(ctx, lossOnly, $"3x5x{V} loss only");
                // ±80 logits: logp ≈ −160, where one float ulp is 1.5e-5, so ρ = exp(logp − old) and exp(ref − logp)
                // carry ~1e-5 relative rounding from logp alone (the engine's float path has the same): 2e-4.
                GrpoCompare(ctx, MakeGrpoCase(ctx, 3, 4, V, 80f, 0.7f, 0.04f), $"3x4x{V} ±80", tol: 2e-4);
            }));
        // 129280 columns: a float logsumexp over that many terms is good to a few 1e-6 absolute, and the loss sees
        // logp's absolute error (ρ = exp(logp − old)), not its relative one: 5e-5.
        list.Add(new KernelCheck("rows/grpo/vocab", ctx => GrpoCompare(ctx, MakeGrpoCase(ctx, 1, 2, 129280, 8f, 0.9f, 0.04f), "1x2x129280", tol: 5e-5)));
        list.Add(new KernelCheck("rows/grpo/misaligned", ctx => GrpoCompare(ctx, MakeGrpoCase(ctx, 2, 3, 64, 4f, 0.7f, 0.04f), "2x3x64 misaligned", misaligned: true)));
        list.Add(new KernelCheck("rows/grpo/masked_nonfinite", ctx =>
        {
            // A masked-out row whose logits hold NaN and +∞ adds exactly 0 loss and a zero gradient row (its logp is NaN).
            foreach (int V in new[] { 7, 1031 })
            {
                var g = MakeGrpoCase(ctx, 2, 4, V, 4f, 0.7f, 0.04f);
                g.Mask![5] = 0f;
                g.Logits[5 * V + 1] = float.NaN;
                g.Logits[5 * V + 2] = float.PositiveInfinity;
                fixed (float* pl = g.Logits, pp = g.RefLogp, pe = g.RefLse) fixed (long* pi = g.Ids)
                    ctx.Ref.LogSoftmaxGather(pl, pi, pp, pe, g.Rows, V, g.Options.InvTemperature);
                GrpoCompare(ctx, g, $"2x4x{V} NaN in a masked row");
            }
        }));
        list.Add(new KernelCheck("rows/grpo/finite_difference", ctx =>
        {
            // The gradient against central differences of Σ_r weight_r·loss_r on the backend itself (h = 1e-2 on
            // one logit: logp moves ≤ 1.5e-2, ρ ≤ 2.3 %, so ratios ≥ 0.08 from the clip boundaries stay on their
            // side). Truncation O(h²) and float rounding of the loss stay ~3e-5 relative (seen); a wrong clip
            // or KL derivative is off by > 4e-2: 1e-3.
            var g = MakeGrpoCase(ctx, 2, 3, 7, 3f, 0.7f, 0.04f);
            float[] ratios = [0.6f, 1.0f, 1.5f, 0.7f, 1.1f, 1.45f];
            for (int r = 0; r < g.Rows; r++) g.Old![r] = (float)(g.RefLogp[r] - Math.Log(ratios[r]));
            g.Mask = [1f, 1f, 0f, 1f, 1f, 1f];
            g.Advantages[0] = 0.8f;
            g.Advantages[1] = -0.6f;
            var (_, _, grad) = GrpoRun(ctx, g);
            g.WantGrad = false;
            g.WantLogp = false;
            const float h = 1e-2f;
            var fd = new float[grad!.Length];
            var probe = (float[])g.Logits.Clone();
            for (int i = 0; i < probe.Length; i++)
            {
                float keep = probe[i], up = keep + h, down = keep - h;
                probe[i] = up;
                double plus = WeightedSum(g, GrpoRun(ctx, g, probe).Loss);
                probe[i] = down;
                double minus = WeightedSum(g, GrpoRun(ctx, g, probe).Loss);
                probe[i] = keep;
                fd[i] = (float)((plus - minus) / ((double)up - down));
            }
            ctx.Close(grad, fd, 1e-3, "dlogits vs central differences");
            ctx.Require(grad.Any(v => Math.Abs(v) > 1e-3f), "the gradient is not all zero");
        }));
    }

    private static double WeightedSum(GrpoCase g, float[] loss)
    {
        double s = 0;
        for (int r = 0; r < loss.Length; r++) s += (g.Weight?[r] ?? 1.0) * loss[r];
        return s;
    }
}
