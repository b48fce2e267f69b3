using NativeReasoner.Model;
using NativeReasoner.Model.Dense;

namespace NativeReasoner.Perf.Gpu;

/// <summary>
/// Greedy decode through each family's cache on the device at every batch of <see cref="GpuBenchSizes.DecodeBatches"/>
/// (1, 16, 64): the DeepSeek-V3 model of the training benchmark (MLA, compressed cache) and the Qwen2.5-0.5B-shaped
/// dense model (GQA K/V cache), random weights and prompts. The prompts' prefill is untimed; a row's time is one
/// decode step of the whole batch (best of the runs after warm-up, <see cref="ModelBenchmark.MeasureDecode(ICausalLM,
/// int, int, int, int, double, long)"/>), its rate batch ÷ step time in tokens/s. --bf16 decodes inside
/// <see cref="Autocast.Bf16"/>. Stopwatch-timed: the sampler reads every step's tokens back, which synchronises.
/// </summary>
internal static class GpuBenchDecode
{
    public static GpuBench Bench { get; } = new("decode",
        "greedy decode tokens/s at batch 1/16/64: the ~100M DeepSeek-V3 config (MLA cache) and the Qwen2.5-0.5B " +
        "shape (GQA cache)",
        ctx =>
        {
            var s = ctx.Sizes;
            int rounds = s.IsSmoke ? 1 : 3;
            double warmup = s.WarmupMs / 1e3;
            GpuBenchOp Op(string family, int batch) =>
                new($"decode_{family}", [batch, s.DecodePrompt, s.DecodeNewTokens], ctx.ModelDType) { Tokens = batch };
            ctx.Plan([.. s.DecodeBatches.Select(b => Op("deepseek_v3", b)),
                      .. s.DecodeBatches.Select(b => Op("dense", b))]);

            using (var mla = new DeepseekV3ForCausalLM(s.TrainConfig, new Generator(1), ctx.Device))
                Run(ctx, mla, "deepseek_v3", MlaCache.BytesPerTokenFor(s.TrainConfig), Op, rounds, warmup);
            var d = s.DenseConfig;
            using (var dense = new DenseForCausalLM(d, new Generator(1), ctx.Device))
            {
                // K and V rows of every layer's K/V heads, fp32.
                long cacheBytes = 2L * d.NumHiddenLayers * d.NumKeyValueHeads * d.HeadDim * sizeof(float);
                Run(ctx, dense, "dense", cacheBytes, Op, rounds, warmup);
            }
        });

    private static void Run(GpuBenchContext ctx, ICausalLM model, string family, long cacheBytesPerToken,
        Func<string, int, GpuBenchOp> op, int rounds, double warmupSeconds)
    {
        var s = ctx.Sizes;
        foreach (int batch in s.DecodeBatches)
        {
            var o = op(family, batch) with
            {
                Extra = [("cache_bytes_per_token", cacheBytesPerToken), ("prompt", s.DecodePrompt),
                         ("new_tokens", s.DecodeNewTokens)],
            };
            try
            {
                ModelBenchmark.DecodeResult r;
                using (ctx.ModelPrecision())
                    r = ModelBenchmark.MeasureDecode(model, batch, s.DecodePrompt, s.DecodeNewTokens, rounds,
                        warmupSeconds, cacheBytesPerToken);
                ctx.EmitTimed(o, new GpuBenchTiming(r.MsPerStep, r.MsPerStep, r.Rounds, "stopwatch"));
            }
            catch (Exception e)
            {
                ctx.Emit(new GpuBenchRow(o, GpuBenchRunner.StatusOf(e), null, GpuBenchRunner.Describe(e), []));
            }
        }
    }
}
