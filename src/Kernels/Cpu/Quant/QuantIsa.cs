// Source: the instruction sets ggml's CPU dot products use (ggml-cpu/arch/x86/quants.c): AVX-512BW, AVX-VNNI, AVX2.
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using NativeReasoner.Kernels.Quant;

namespace NativeReasoner.Kernels.Cpu.Quant;

/// <summary>
/// The code paths of the packed-weight dot products, fastest last. AVX-512 multiplies two 32-weight blocks per
/// 512-bit instruction (vpmaddubsw + vpmaddwd: .NET exposes no 512-bit vpdpbusd without AVX10.2); AVX-VNNI does one
/// block per 256-bit vpdpbusd; AVX2 one block per vpmaddubsw + vpmaddwd; scalar is plain integer arithmetic.
/// </summary>
internal enum QuantIsa { Scalar, Avx2, AvxVnni, Avx512 }

internal static class QuantIsas
{
    public static QuantIsa Best { get; } = Detect();

    /// <summary>
    /// The path <paramref name="format"/>'s products take by default: AVX-VNNI for Q8_0 and Q4_0 where the CPU has it
    /// (one 256-bit vpdpbusd per block), else <see cref="Best"/>. On an AMD EPYC (Zen 4, whose 512-bit integer ops
    /// issue as two 256-bit halves) the VNNI path ran Qwen2.5-0.5B's batch-1 projections 2–2.7× faster than the
    /// AVX-512 vpmaddubsw + vpmaddwd pair (perf: profile-dense-decode); Q4_K showed no clear winner and keeps
    /// <see cref="Best"/>.
    /// </summary>
    public static QuantIsa BestFor(QuantFormat format) =>
        format is QuantFormat.Q8_0 or QuantFormat.Q4_0 && Supported(QuantIsa.AvxVnni) ? QuantIsa.AvxVnni : Best;

    /// <summary>True when this machine can run <paramref name="isa"/>.</summary>
    public static bool Supported(QuantIsa isa) => isa switch
    {
        QuantIsa.Scalar => true,
        QuantIsa.Avx2 => Avx2.IsSupported && Fma.IsSupported,
        QuantIsa.AvxVnni => Avx2.IsSupported && Fma.IsSupported && AvxVnni.IsSupported,
        QuantIsa.Avx512 => Avx512BW.IsSupported && Vector512.IsHardwareAccelerated,
        _ => false,
    };

    private static QuantIsa Detect()
    {
        if (Supported(QuantIsa.Avx512)) return QuantIsa.Avx512;
        if (Supported(QuantIsa.AvxVnni)) return QuantIsa.AvxVnni;
        if (Supported(QuantIsa.Avx2)) return QuantIsa.Avx2;
        return QuantIsa.Scalar;
    }
}
