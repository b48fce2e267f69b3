namespace NativeReasoner.Perf.Gpu;

/// <summary>
/// MLA decode on the compressed cache (<c>CudaKernels.MlaDecode</c>, CUDA only): batch 128 sequences of 4096 cached
/// tokens, 128 heads, latent 512 + rope 64, bf16 cache. One query token per sequence, so the kernel is bound by
/// reading the cache once: GB/s counts the cache bytes (batch·len·576·2), and "of_copy" is that over the measured
/// copy bandwidth (target ≥ 60%). q, o and lse are under 10% of the cache and are not counted.
/// </summary>
internal static unsafe class GpuBenchMlaDecode
{
    public static GpuBench Bench { get; } = new("mla_decode",
        "MLA decode, batch 128 × 4096 cached tokens, 128 heads, 512+64, bf16 cache (GB/s over cache bytes; CUDA only)", ctx =>
        {
            var s = ctx.Sizes.Mla;
            double cacheBytes = (double)s.Batch * s.Len * s.Width * sizeof(ushort);
            var op = new GpuBenchOp("mla_decode", s.ToArray(), "bf16") { Bytes = cacheBytes, VersusCopy = true, Extra = [("bytes_counted", "cache")] };
            ctx.Plan(op);
            var cuda = ctx.Cuda;
            if (cuda == null)
            {
                ctx.Skip(op, GpuBenchRow.Unsupported, "MLA decode is a CUDA-only op (CudaKernels.MlaDecode)");
                return;
            }
            float* q = ctx.Floats((long)s.Batch * s.Heads * s.Width, seed: 1);
            ushort* cache = ctx.Bf16((long)s.Batch * s.Len * s.Width, seed: 2);
            int* lengths = ctx.Upload(Enumerable.Repeat(s.Len, s.Batch).ToArray());
            float* o = ctx.Empty<float>((long)s.Batch * s.Heads * s.Latent);
            float* lse = ctx.Empty<float>((long)s.Batch * s.Heads);
            float scale = 1f / MathF.Sqrt(192f); // DeepSeek-V3's qk_head_dim (128 nope + 64 rope); any scale times the same
            ctx.Measure(op, () => cuda.MlaDecode(q, cache, true, lengths, o, lse, s.Batch, s.Heads, s.Len, s.Latent, s.Rope, scale));
        });
}
