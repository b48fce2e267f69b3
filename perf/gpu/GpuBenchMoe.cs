using NativeReasoner.Model;

namespace NativeReasoner.Perf.Gpu;

/// <summary>
/// The engine's own MoE block (<see cref="MoeLayer"/>: router GEMM, sigmoid, MoeRoute, MoePermute, dispatch,
/// per-expert SwiGLU GEMMs, weighted combine, and their backward) on the device, at DeepSeek-V3's routing: 256
/// experts, top-8 of 8 groups with 4 kept, bias-corrected selection, normalised weights × 2.5; hidden 1024, expert
/// width 256, 8192 tokens, no shared expert (the PyTorch anchor has none either). Forward alone runs without
/// gradients (inference); forward+backward computes the gradients of the input and of every weight. Target:
/// forward+backward ≥ 1× the straightforward PyTorch layer of perf/gpu/torch_anchors.py.
/// </summary>
internal static class GpuBenchMoe
{
    public static GpuBench Bench { get; } = new("moe",
        "MoE layer (engine's MoeLayer) 8192 tokens, hidden 1024, 256 experts × 256, top-8 of 8 groups (4 kept): fwd, fwd+bwd", ctx =>
        {
            var s = ctx.Sizes.Moe;
            MoeLayer? layer = null;
            double flops = s.ForwardFlops;
            var fwd = new GpuBenchOp("moe_fwd", s.ToArray(), "fp32") { Flops = flops, Tokens = s.Tokens, Derived = Load };
            var both = new GpuBenchOp("moe_fwd_bwd", s.ToArray(), "fp32") { Flops = 3 * flops, Tokens = s.Tokens, Derived = Load };
            ctx.Plan(fwd, both);
            (string, object?)[] Load(double _)
            {
                // How even the routing was (the same random init and inputs give PyTorch the same spread).
                double mean = layer!.LastLoad.Average();
                return [("load_max_over_mean", mean > 0 ? layer.LastLoad.Max() / mean : double.NaN)];
            }

            var config = s.ToConfig();
            var gen = new Generator(7);
            using var owned = layer = new MoeLayer(config, gen, ctx.Device);
            using var x = Tensor.Randn([1, s.Tokens, s.Hidden], gen, 1f, ctx.Device);
            using var dy = Tensor.Randn([1, s.Tokens, s.Hidden], gen, 1f, ctx.Device);
            x.RequiresGrad_();

            ctx.Measure(fwd, () =>
            {
                using var noGrad = Tensor.NoGrad();
                using var scope = new TensorScope();
                layer.Forward(x);
            });
            ctx.Measure(both, () =>
            {
                using (var scope = new TensorScope())
                {
                    var y = layer.Forward(x);
                    y.Backward(dy);
                }
                layer.ZeroGrad();
                x.Grad = null;
            });
        });
}
