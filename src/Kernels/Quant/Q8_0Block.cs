// Source: ggml's block_q8_0 (ggml-common.h) and quantize_row_q8_0_ref / dequantize_row_q8_0 (ggml-quants.c).
using System.Runtime.CompilerServices;

namespace NativeReasoner.Kernels.Quant;

/// <summary>
/// Q8_0: 32 weights in 34 bytes — fp16 d at bytes 0–1, then q[0..32) as int8 at bytes 2–33; weight = q · d.
/// Quantising: d = max|x| / 127, q = round(x / d) with halves away from zero (C's roundf), as ggml's reference.
/// </summary>
public static class Q8_0Block
{
    public const int Size = 32;
    public const int Bytes = 2 + Size;

    /// <summary>x: [32] → one block.</summary>
    public static void Quantize(ReadOnlySpan<float> x, Span<byte> block)
    {
        float amax = 0f;
        for (int j = 0; j < Size; j++) amax = MathF.Max(amax, MathF.Abs(x[j]));
        float d = amax / 127f;
        // The quantised values use the fp32 scale, the stored one is its fp16 rounding (as ggml does).
        float id = d != 0f ? 1f / d : 0f;
        Half16.Write(block, d);
        for (int j = 0; j < Size; j++)
            block[2 + j] = (byte)(sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
    }

    /// <summary>One block → y: [32].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dequantize(ReadOnlySpan<byte> block, Span<float> y)
    {
        float d = Half16.Read(block);
        for (int j = 0; j < Size; j++) y[j] = (sbyte)block[2 + j] * d;
    }
}
