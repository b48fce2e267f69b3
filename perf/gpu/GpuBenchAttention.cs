namespace NativeReasoner.Perf.Gpu;

/// <summary>
/// Causal self-attention, q, k, v: [B·H, T, D] (PyTorch's [B, H, T, D] contiguous), scale 1/√D. Flops count the
/// visible pairs only (4·BH·D·T(T+1)/2 forward; backward 2.5× that: five matmuls against two), as FlashAttention
/// and the PyTorch anchor do. bf16 flash attention (CUDA-only methods of CudaKernels) at B=8 H=16 T=4096 D=128:
/// targets ≥ 0.6× (forward) and ≥ 0.5× (backward) PyTorch's scaled_dot_product_attention. The fp32 path is the
/// <c>IKernels.AttentionForward/Backward</c> every backend has (what training runs today).
/// </summary>
internal static unsafe class GpuBenchAttention
{
    public static GpuBench FlashBf16 { get; } = new("attention_bf16",
        "bf16 flash attention B=8 H=16 T=4096 D=128 causal: forward, backward, forward+backward (CUDA only)", ctx =>
        {
            var s = ctx.Sizes.FlashBf16;
            double f = s.CausalForwardFlops;
            var fwd = new GpuBenchOp("attention_bf16_fwd", s.ToArray(), "bf16") { Flops = f };
            var bwd = new GpuBenchOp("attention_bf16_bwd", s.ToArray(), "bf16") { Flops = 2.5 * f };
            var both = new GpuBenchOp("attention_bf16_fwd_bwd", s.ToArray(), "bf16") { Flops = 3.5 * f };
            ctx.Plan(fwd, bwd, both);
            var cuda = ctx.Cuda;
            if (cuda == null)
            {
                foreach (var op in new[] { fwd, bwd, both })
                    ctx.Skip(op, GpuBenchRow.Unsupported, "bf16 flash attention is a CUDA-only op (CudaKernels.AttentionForwardBf16)");
                return;
            }
            long n = s.Elements;
            ushort* q = ctx.Bf16(n, seed: 1), k = ctx.Bf16(n, seed: 2), v = ctx.Bf16(n, seed: 3), dO = ctx.Bf16(n, seed: 4);
            ushort* o = ctx.Empty<ushort>(n), dq = ctx.Empty<ushort>(n), dk = ctx.Empty<ushort>(n), dv = ctx.Empty<ushort>(n);
            float* lse = ctx.Empty<float>((long)s.BH * s.T);
            float scale = 1f / MathF.Sqrt(s.D);
            void Forward() => cuda.AttentionForwardBf16(q, k, v, o, lse, s.BH, s.T, s.T, s.D, s.D, scale, true, 1);
            void Backward() => cuda.AttentionBackwardBf16(q, k, v, o, lse, dO, dq, dk, dv, s.BH, s.T, s.T, s.D, s.D, scale, true, 1);
            ctx.Measure(fwd, Forward);
            ctx.Measure(bwd, Backward, setup: Forward);   // o and lse of a real forward
            ctx.Measure(both, () => { Forward(); Backward(); });
        });

    public static GpuBench Fp32 { get; } = new("attention_fp32",
        "fp32 attention (IKernels.AttentionForward/Backward) B=8 H=16 T=2048 D=128 causal", ctx =>
        {
            var s = ctx.Sizes.AttentionFp32;
            double f = s.CausalForwardFlops;
            var fwd = new GpuBenchOp("attention_fp32_fwd", s.ToArray(), "fp32") { Flops = f };
            var bwd = new GpuBenchOp("attention_fp32_bwd", s.ToArray(), "fp32") { Flops = 2.5 * f };
            ctx.Plan(fwd, bwd);
            long n = s.Elements;
            float* q = ctx.Floats(n, seed: 1), k = ctx.Floats(n, seed: 2), v = ctx.Floats(n, seed: 3), dO = ctx.Floats(n, seed: 4);
            float* o = ctx.Empty<float>(n), dq = ctx.Empty<float>(n), dk = ctx.Empty<float>(n), dv = ctx.Empty<float>(n);
            float* lse = ctx.Empty<float>((long)s.BH * s.T);
            float scale = 1f / MathF.Sqrt(s.D);
            void Forward() => ctx.K.AttentionForward(q, k, v, o, lse, s.BH, s.T, s.T, s.D, s.D, scale, true, 1);
            ctx.Measure(fwd, Forward);
            ctx.Measure(bwd, () => ctx.K.AttentionBackward(q, k, v, o, lse, dO, dq, dk, dv, s.BH, s.T, s.T, s.D, s.D, scale, true, 1), setup: Forward);
        });
}
