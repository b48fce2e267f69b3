namespace NativeReasoner.Perf.Gpu;

/// <summary>
/// Datasheet peaks of the cards the benchmarks are run on, keyed by the name the driver reports, for MFU.
/// bf16 is the dense tensor-core rate (no sparsity), fp32 the plain (non-tensor-core) FMA rate. H200 is the
/// H100's silicon with more and faster memory, so the same compute peaks. Any other card is "unknown": an MFU
/// against a guessed peak would be worse than none. MFU is only as good as this table; the measured GEMM rows
/// say what the card really does.
/// </summary>
internal static class GpuBenchPeaks
{
    /// <summary>The peaks in TFLOP/s, or null for a card not in the table (CPU devices included).</summary>
    public static (double Bf16, double Fp32, string Card)? For(string cardName)
    {
        string n = cardName.ToUpperInvariant();
        if (n.Contains("H100") || n.Contains("H200"))
        {
            string card = n.Contains("H200") ? "H200" : "H100";
            if (n.Contains("NVL")) return (835, 60, card + " NVL");
            if (n.Contains("PCIE")) return (756, 51, card + " PCIe");
            return (989, 67, card + " SXM");      // "NVIDIA H100 80GB HBM3", "NVIDIA H200"
        }
        return null;
    }
}
