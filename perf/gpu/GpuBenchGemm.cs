namespace NativeReasoner.Perf.Gpu;

/// <summary>
/// Square GEMMs at 4096³ (C = A·B, row-major, no transposes, beta = 0): fp32 through <c>IKernels.Gemm</c> (the SIMT
/// kernel; target ≥ 0.5× cuBLAS fp32 with TF32 off) and bf16 operands with fp32 accumulation and output through
/// <c>IKernels.GemmBf16</c> (tensor cores; target ≥ 0.7× cuBLAS bf16). TFLOP/s = 2·M·N·K / time.
/// </summary>
internal static unsafe class GpuBenchGemm
{
    public static GpuBench Fp32 { get; } = new("gemm_fp32", "fp32 GEMM 4096³ (TFLOP/s = 2·M·N·K / time)", ctx =>
    {
        int n = ctx.Sizes.Gemm;
        long nn = (long)n * n;
        var op = new GpuBenchOp("gemm_fp32", [n, n, n], "fp32") { Flops = 2.0 * n * n * n };
        ctx.Plan(op);
        float* a = ctx.Floats(nn, seed: 1), b = ctx.Floats(nn, seed: 2), c = ctx.Empty<float>(nn);
        ctx.Measure(op,
            () => ctx.K.Gemm(1, false, false, n, n, n, 1f, a, n, 0, b, n, 0, 0f, c, n, 0));
    });

    public static GpuBench Bf16 { get; } = new("gemm_bf16", "bf16 GEMM 4096³, fp32 accumulate and output", ctx =>
    {
        int n = ctx.Sizes.Gemm;
        long nn = (long)n * n;
        var op = new GpuBenchOp("gemm_bf16", [n, n, n], "bf16") { Flops = 2.0 * n * n * n };
        ctx.Plan(op);
        ushort* a = ctx.Bf16(nn, seed: 1), b = ctx.Bf16(nn, seed: 2);
        float* c = ctx.Empty<float>(nn);
        ctx.Measure(op,
            () => ctx.K.GemmBf16(1, false, false, n, n, n, 1f, a, n, 0, b, n, 0, 0f, c, n, 0));
    });
}
