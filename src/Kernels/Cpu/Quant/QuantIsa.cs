// Source: the instruction sets ggml's CPU dot products use (ggml-cpu/arch/x86/quants.c): AVX-512BW, AVX-VNNI, AVX2.
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace NativeReasoner.Kernels.Cpu.Quant;

/// <summary>
/// The code paths of the packed-weight dot products. AVX-512 multiplies two 32-weight blocks per 512-bit
/// instruction pair (vpmaddubsw + vpmaddwd: .NET exposes no 512-bit vpdpbusd without AVX10.2); AVX-VNNI does one
/// block per 256-bit vpdpbusd, and its bf16 rows take 512-bit FMAs where the CPU has AVX-512F; AVX2 one block per
/// vpmaddubsw + vpmaddwd; scalar is plain integer arithmetic.
/// </summary>
internal enum QuantIsa { Scalar, Avx2, AvxVnni, Avx512 }

internal static class QuantIsas
{
    public static QuantIsa Best { get; } = Detect();

    /// <summary>True when this machine can run <paramref name="isa"/>.</summary>
    public static bool Supported(QuantIsa isa) => isa switch
    {
        QuantIsa.Scalar => true,
        QuantIsa.Avx2 => Avx2.IsSupported && Fma.IsSupported,
        QuantIsa.AvxVnni => Avx2.IsSupported && Fma.IsSupported && AvxVnni.IsSupported,
        QuantIsa.Avx512 => Avx512BW.IsSupported && Vector512.IsHardwareAccelerated,
        _ => false,
    };

    /// <summary>
    /// AVX-VNNI before AVX-512 where the CPU has both: one 256-bit vpdpbusd per block does what the AVX-512 path
    /// needs vpmaddubsw + vpmaddwd for per two blocks, so it issues no more integer work even on full-width 512-bit
    /// units, and on AMD Zen 4 (512-bit ops split in two 256-bit halves) the integer dots ran 1.2–2.1× faster
    /// (profile-dense-decode, one thread: Q8_0 28 vs 13 GB/s, Q4_0 11.5 vs 6.6, Q4_K 12.5 vs 10.3).
    /// </summary>
    private static QuantIsa Detect()
    {
        if (Supported(QuantIsa.AvxVnni)) return QuantIsa.AvxVnni;
        if (Supported(QuantIsa.Avx512)) return QuantIsa.Avx512;
        if (Supported(QuantIsa.Avx2)) return QuantIsa.Avx2;
        return QuantIsa.Scalar;
    }
}
