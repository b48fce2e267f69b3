// Source: the instruction sets ggml's CPU dot products use (ggml-cpu/arch/x86/quants.c): AVX-512BW, AVX-VNNI, AVX2.
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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
