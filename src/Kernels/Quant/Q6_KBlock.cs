// Source: ggml's block_q6_K (ggml-common.h) and dequantize_row_q6_K (ggml-quants.c).
using System.Runtime.CompilerServices;

namespace NativeReasoner.Kernels.Quant;

/// <summary>
/// Q6_K (decode only): 256 weights in 210 bytes — ql[128] (low 4 bits) at 0, qh[64] (high 2 bits) at 128, sixteen
/// int8 scales at 192, fp16 d at 208; weight = d · scale · (q − 32) with q 6 bits. The weights are two halves of
/// 128; in half h (ql += 64h, qh += 32h, scales += 8h), for l in [0, 32): weight 128h + l + 32r takes its low
/// bits from the low nibble of ql[l] (r = 0), of ql[l + 32] (r = 1), the high nibble of ql[l] (r = 2), of
/// ql[l + 32] (r = 3), its high bits from bits 2r–2r+1 of qh[l], and scale[l / 16 + 2r].
/// </summary>
public static class Q6_KBlock
{
    public const int Size = 256;
    public const int Bytes = 128 + 64 + 16 + 2;
    public const int QhOffset = 128;
    public const int ScalesOffset = 192;
    public const int DOffset = 208;

    /// <summary>One block → y: [256].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dequantize(ReadOnlySpan<byte> block, Span<float> y)
    {
        float d = Half16.Read(block[DOffset..]);
        for (int h = 0; h < 2; h++)
        {
            ReadOnlySpan<byte> ql = block.Slice(64 * h, 64), qh = block.Slice(QhOffset + 32 * h, 32);
            ReadOnlySpan<byte> sc = block.Slice(ScalesOffset + 8 * h, 8);
            for (int l = 0; l < 32; l++)
            {
                int s = l / 16;
                int q0 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q1 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q2 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q3 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[128 * h + l] = d * (sbyte)sc[s] * q0;
                y[128 * h + l + 32] = d * (sbyte)sc[s + 2] * q1;
                y[128 * h + l + 64] = d * (sbyte)sc[s + 4] * q2;
                y[128 * h + l + 96] = d * (sbyte)sc[s + 6] * q3;
            }
        }
    }
}
