namespace NativeReasoner.Perf.Gpu;

/// <summary>
/// The bandwidth ceiling and the memory-bound kernels. GB/s counts the fewest bytes each op must move (every input
/// read once, every output written once, fp32), so a kernel that re-reads its input shows as slower, not busier.
/// The target of the issues: ≥ 80% of the device-to-device copy bandwidth ("of_copy"). Sizes (256 MiB per tensor on
/// the GPU) overflow the L2, so repeated calls measure HBM.
/// </summary>
internal static unsafe class GpuBenchMemoryBound
{
    public static GpuBench Copy { get; } = new("copy",
        "device-to-device memcpy of 1 GiB (the bandwidth ceiling; GB/s counts bytes read + written)", ctx =>
        {
            long size = ctx.Sizes.CopyBytes / 4 * 4;
            var op = new GpuBenchOp("copy", [checked((int)size)], "u8") { Bytes = 2.0 * size };
            ctx.Plan(op);
            ctx.CopyBuffers(out byte* src, out byte* dst, out long bytes);
            var row = ctx.Measure(op, () => ctx.Memory.Copy(src, dst, bytes));
            if (row.Timing is { } t) ctx.SetCopyGbps(2.0 * bytes / (t.MedianMs * 1e6));
        });

    public static GpuBench Softmax { get; } = new("softmax",
        "row softmax [16384, 4096] fp32 (GB/s over read x + write y)", ctx =>
        {
            int rows = ctx.Sizes.Rows, cols = ctx.Sizes.Cols;
            long n = (long)rows * cols;
            var op = new GpuBenchOp("softmax", [rows, cols], "fp32") { Bytes = 2.0 * n * 4, VersusCopy = true };
            ctx.Plan(op);
            float* x = ctx.Floats(n, -4f, 4f);
            float* y = ctx.Empty<float>(n);
            ctx.Measure(op, () => ctx.K.Softmax(x, y, rows, cols, false));
        });

    public static GpuBench RmsNorm { get; } = new("rmsnorm",
        "RMSNorm forward [16384, 4096] fp32 (GB/s over read x, w + write y, rstd)", ctx =>
        {
            int rows = ctx.Sizes.Rows, cols = ctx.Sizes.Cols;
            long n = (long)rows * cols;
            var op = new GpuBenchOp("rmsnorm", [rows, cols], "fp32") { Bytes = (2.0 * n + cols + rows) * 4, VersusCopy = true };
            ctx.Plan(op);
            float* x = ctx.Floats(n);
            float* w = ctx.Floats(cols, 0.5f, 1.5f, seed: 2);
            float* y = ctx.Empty<float>(n);
            float* rstd = ctx.Empty<float>(rows);
            ctx.Measure(op, () => ctx.K.RmsNorm(x, w, y, rstd, rows, cols, 1e-6f));
        });

    public static GpuBench SiluMul { get; } = new("silu_mul",
        "SwiGLU's silu(gate)·up on 64 Mi floats (GB/s over read gate, up + write y)", ctx =>
        {
            long n = ctx.Sizes.Elements;
            var op = new GpuBenchOp("silu_mul", [checked((int)n)], "fp32") { Bytes = 3.0 * n * 4, VersusCopy = true };
            ctx.Plan(op);
            float* gate = ctx.Floats(n, -4f, 4f, seed: 1);
            float* up = ctx.Floats(n, -1f, 1f, seed: 2);
            float* y = ctx.Empty<float>(n);
            ctx.Measure(op, () => ctx.K.SiluMul(gate, up, y, n));
        });

    public static GpuBench AdamW { get; } = new("adamw",
        "one AdamW step on 64 Mi parameters (GB/s over read p, g, m, v + write p, m, v)", ctx =>
        {
            long n = ctx.Sizes.Elements;
            var op = new GpuBenchOp("adamw", [checked((int)n)], "fp32") { Bytes = 7.0 * n * 4, VersusCopy = true };
            ctx.Plan(op);
            float* p = ctx.Floats(n, -1f, 1f, seed: 1);
            float* g = ctx.Floats(n, -1f, 1f, seed: 2);
            float* m = ctx.Floats(n, -0.1f, 0.1f, seed: 3);
            float* v = ctx.Floats(n, 0f, 0.01f, seed: 4);      // second moments are never negative
            const float beta1 = 0.9f, beta2 = 0.999f;
            float bias1 = 1f - MathF.Pow(beta1, 10), bias2 = 1f - MathF.Pow(beta2, 10);
            ctx.Measure(op, () => ctx.K.AdamWStep(p, g, m, v, n, 1e-4f, beta1, beta2, 1e-8f, 0.01f, bias1, bias2));
        });
}
