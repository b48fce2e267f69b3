using NativeReasoner.Model;
using NativeReasoner.Model.Dense;

namespace NativeReasoner.Perf.Gpu;

/// <summary>[B, H, T, D] of an attention benchmark (one head per batch item: BH = B·H).</summary>
internal readonly record struct AttentionShape(int B, int H, int T, int D)
{
    public int BH => B * H;
    public long Elements => (long)BH * T * D;
    public int[] ToArray() => [B, H, T, D];

    /// <summary>
    /// Useful flops of a causal forward: QKᵀ and PV over the T(T+1)/2 visible pairs, 2 flops a multiply-add each,
    /// so 4·BH·D·T(T+1)/2 (FlashAttention's own counting; the backward is 2.5× that).
    /// </summary>
    public double CausalForwardFlops => 4.0 * BH * D * (T * (T + 1.0) / 2.0);
}

/// <summary>MLA decode: one query token per sequence over a compressed cache of <see cref="Len"/> tokens.</summary>
internal readonly record struct MlaShape(int Batch, int Len, int Heads, int Latent, int Rope)
{
    public int Width => Latent + Rope;
    public int[] ToArray() => [Batch, Len, Heads, Latent, Rope];
}

/// <summary>One MoE layer: tokens, hidden, expert width, experts, top-k, groups, kept groups.</summary>
internal readonly record struct MoeShape(int Tokens, int Hidden, int Width, int Experts, int TopK, int Groups, int KeptGroups)
{
    public int[] ToArray() => [Tokens, Hidden, Width, Experts, TopK, Groups, KeptGroups];

    /// <summary>Router GEMM (2·n·E·h) plus the three expert GEMMs of every token-slot (3 · 2·n·k·h·f).</summary>
    public double ForwardFlops => 2.0 * Tokens * Experts * Hidden + 6.0 * Tokens * TopK * Hidden * Width;

    /// <summary>The engine's config holding these sizes (routing as DeepSeek-V3: sigmoid, noaux_tc, normalised, ×2.5; no shared expert).</summary>
    public DeepseekV3Config ToConfig() => new DeepseekV3Config
    {
        HiddenSize = Hidden, MoeIntermediateSize = Width, NRoutedExperts = Experts, NumExpertsPerTok = TopK,
        NGroup = Groups, TopkGroup = KeptGroups, NSharedExperts = 0, ScoringFunc = "sigmoid", TopkMethod = "noaux_tc",
        NormTopkProb = true, RoutedScalingFactor = 2.5,
    }.Validate();
}

/// <summary>
/// The sizes of every GPU benchmark. <see cref="Full"/> is what the issues ask for (sizes that fill an H100 and
/// overflow its 50 MB L2, so repeated runs measure HBM, not the cache); <see cref="Smoke"/> shrinks everything so a
/// whole run takes seconds on the CPU or the CUDA emulator (it checks the harness, not the hardware).
/// </summary>
internal sealed record GpuBenchSizes
{
    public required bool IsSmoke { get; init; }

    /// <summary>Bytes of the device-to-device copy (the bandwidth ceiling).</summary>
    public required long CopyBytes { get; init; }

    /// <summary>M = N = K of the square GEMMs.</summary>
    public required int Gemm { get; init; }

    /// <summary>[rows, cols] of softmax and RMSNorm.</summary>
    public required int Rows { get; init; }
    public required int Cols { get; init; }

    /// <summary>Elements of SiLU·mul and AdamW.</summary>
    public required long Elements { get; init; }

    public required AttentionShape FlashBf16 { get; init; }
    public required AttentionShape AttentionFp32 { get; init; }
    public required MlaShape Mla { get; init; }
    public required MoeShape Moe { get; init; }

    /// <summary>The DeepSeek-V3-architecture model of the training-step benchmark, and its [batch, seq].</summary>
    public required DeepseekV3Config TrainConfig { get; init; }
    public required int TrainBatch { get; init; }
    public required int TrainSeq { get; init; }

    /// <summary>The Qwen2.5-0.5B-shaped model of the dense training-step benchmark, and its [batch, seq].</summary>
    public required DenseConfig DenseConfig { get; init; }
    public required int DenseBatch { get; init; }
    public required int DenseSeq { get; init; }

    /// <summary>Decode: the batch sizes, the prompt length (prefill, untimed) and the new tokens of each run.</summary>
    public required int[] DecodeBatches { get; init; }
    public required int DecodePrompt { get; init; }
    public required int DecodeNewTokens { get; init; }

    /// <summary>Timing: at least this many measured calls (the median of them is reported).</summary>
    public int MinReps { get; init; } = 10;
    /// <summary>Warm-up calls before measuring (module load, NVRTC, allocator growth stay out of the numbers), and at least this long.</summary>
    public required int WarmupCalls { get; init; }
    public required double WarmupMs { get; init; }
    /// <summary>Keep measuring (beyond MinReps) until this much time has been spent, at most MaxReps calls.</summary>
    public required double BudgetMs { get; init; }
    public int MaxReps { get; init; } = 200;

    public static GpuBenchSizes Full { get; } = new()
    {
        IsSmoke = false,
        CopyBytes = 1L << 30,
        Gemm = 4096,
        Rows = 16384, Cols = 4096,                    // 256 MiB fp32 each way
        Elements = 1L << 26,                          // 64 Mi floats = 256 MiB per tensor
        FlashBf16 = new AttentionShape(8, 16, 4096, 128),
        AttentionFp32 = new AttentionShape(8, 16, 2048, 128),
        Mla = new MlaShape(128, 4096, 128, 512, 64),  // 604 MB of bf16 cache
        Moe = new MoeShape(8192, 1024, 256, 256, 8, 8, 4),
        TrainConfig = GpuBenchTraining.Config100M,
        TrainBatch = 8, TrainSeq = 1024,
        DenseConfig = GpuBenchDense.Qwen25HalfB,
        DenseBatch = 4, DenseSeq = 1024,
        DecodeBatches = [1, 16, 64], DecodePrompt = 128, DecodeNewTokens = 64,
        WarmupCalls = 2, WarmupMs = 100, BudgetMs = 1000,
    };

    public static GpuBenchSizes Smoke { get; } = new()
    {
        IsSmoke = true,
        CopyBytes = 1L << 20,
        Gemm = 64,
        Rows = 64, Cols = 256,
        Elements = 1 << 14,
        FlashBf16 = new AttentionShape(1, 2, 64, 32),
        AttentionFp32 = new AttentionShape(1, 2, 48, 32),
        Mla = new MlaShape(2, 64, 4, 32, 8),
        Moe = new MoeShape(64, 32, 16, 16, 4, 8, 4),
        TrainConfig = GpuBenchTraining.ConfigSmoke,
        TrainBatch = 2, TrainSeq = 8,
        DenseConfig = GpuBenchDense.ConfigSmoke,
        DenseBatch = 2, DenseSeq = 8,
        DecodeBatches = [1, 3], DecodePrompt = 4, DecodeNewTokens = 3,
        WarmupCalls = 1, WarmupMs = 0, BudgetMs = 0,
    };
}
