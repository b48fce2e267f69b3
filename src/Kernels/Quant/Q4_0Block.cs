// Source: ggml's block_q4_0 (ggml-common.h) and quantize_row_q4_0_ref / dequantize_row_q4_0 (ggml-quants.c).
using System.Runtime.CompilerServices;

namespace NativeReasoner.Kernels.Quant;

/// <summary>
/// Q4_0: 32 weights in 18 bytes — fp16 d at bytes 0–1, then 16 bytes where byte 2 + j holds q[j] in its low
/// nibble and q[j + 16] in its high nibble (ggml's order: the first half of the block in the low nibbles);
/// weight = (q − 8) · d. Quantising as ggml's reference: m = the x of largest magnitude (its sign kept),
/// d = m / −8 (so m itself maps to q = 0), q = min(15, trunc(x / d + 8.5)).
/// </summary>
public static class Q4_0Block
{
    public const int Size = 32;
    public const int Bytes = 2 + Size / 2;

    /// <summary>x: [32] → one block.</summary>
    public static void Quantize(ReadOnlySpan<float> x, Span<byte> block)
    {
        float amax = 0f, max = 0f;
        for (int j = 0; j < Size; j++)
        {
            float a = MathF.Abs(x[j]);
            if (a > amax) { amax = a; max = x[j]; }
        }
        float d = max / -8f;
        float id = d != 0f ? 1f / d : 0f;
        Half16.Write(block, d);
        for (int j = 0; j < Size / 2; j++)
        {
            // x / d lies in [−8, 8], so x / d + 8.5 in [0.5, 16.5]: truncation is floor, 16 is clamped to 15.
            int lo = Math.Min(15, (int)(x[j] * id + 8.5f));
            int hi = Math.Min(15, (int)(x[j + Size / 2] * id + 8.5f));
            block[2 + j] = (byte)(lo | (hi << 4));
        }
    }

    /// <summary>One block → y: [32].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dequantize(ReadOnlySpan<byte> block, Span<float> y)
    {
        float d = Half16.Read(block);
        for (int j = 0; j < Size / 2; j++)
        {
            byte b = block[2 + j];
            y[j] = ((b & 0xF) - 8) * d;
            y[j + Size / 2] = ((b >> 4) - 8) * d;
        }
    }
}
