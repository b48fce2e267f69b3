namespace NativeReasoner.Perf.Gpu;

/// <summary>
/// One GPU benchmark: a name for --only, a line saying what it measures, and the code that sets up its inputs
/// and calls <see cref="GpuBenchContext.Measure"/> once per op it reports (several ops may share one setup, e.g.
/// the forward and backward of the same attention).
/// </summary>
internal sealed record GpuBench(string Name, string What, Action<GpuBenchContext> Run);

/// <summary>Every GPU benchmark, in the order they run: the copy ceiling first, the model benchmarks
/// (training steps, decode) last.</summary>
internal static class GpuBenchCatalog
{
    public static IReadOnlyList<GpuBench> All { get; } =
    [
        GpuBenchMemoryBound.Copy,
        GpuBenchGemm.Fp32,
        GpuBenchGemm.Bf16,
        GpuBenchMemoryBound.Softmax,
        GpuBenchMemoryBound.RmsNorm,
        GpuBenchMemoryBound.SiluMul,
        GpuBenchMemoryBound.AdamW,
        GpuBenchAttention.FlashBf16,
        GpuBenchAttention.Fp32,
        GpuBenchMlaDecode.Bench,
        GpuBenchMoe.Bench,
        GpuBenchTraining.Bench,
        GpuBenchDense.Bench,
        GpuBenchDecode.Bench,
    ];

    /// <summary>
    /// The benchmarks an --only list picks: a benchmark is picked when its name starts with one of the values
    /// ("gemm" picks gemm_fp32 and gemm_bf16). Unknown values are returned so the caller can refuse them.
    /// </summary>
    public static (IReadOnlyList<GpuBench> Picked, IReadOnlyList<string> Unknown) Select(IReadOnlyList<string> only)
    {
        var wanted = only.SelectMany(o => o.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToArray();
        if (wanted.Length == 0) return (All, []);
        var unknown = wanted.Where(w => !All.Any(b => b.Name.StartsWith(w, StringComparison.OrdinalIgnoreCase))).ToArray();
        var picked = All.Where(b => wanted.Any(w => b.Name.StartsWith(w, StringComparison.OrdinalIgnoreCase))).ToArray();
        return (picked, unknown);
    }
}
