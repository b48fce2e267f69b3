// Source: ggml's block_q4_K (ggml-common.h), get_scale_min_k4, quantize_row_q4_K_ref and dequantize_row_q4_K
//         (ggml-quants.c); the k-quants of llama.cpp (ikawrakow, 2023).
using System.Runtime.CompilerServices;

namespace NativeReasoner.Kernels.Quant;

/// <summary>
/// Q4_K: 256 weights in 144 bytes, eight sub-blocks of 32. Bytes 0–1 fp16 d, 2–3 fp16 dmin, 4–15 the eight 6-bit
/// scales and eight 6-bit mins (packed below), 16–143 the 4-bit q. Weight i of sub-block j is
/// d · scale_j · q − dmin · min_j.
/// <para>Scale packing (s = bytes 4–15): for j &lt; 4, scale_j = s[j] &amp; 63 and min_j = s[j + 4] &amp; 63; for j ≥ 4
/// the low 4 bits of scale_j and min_j are the low and high nibbles of s[j + 4], and their top 2 bits are the top
/// 2 bits of s[j − 4] and s[j].</para>
/// <para>Nibble order: the 256 weights are four chunks of 64; byte 16 + 32c + l holds weight 64c + l in its low
/// nibble and weight 64c + 32 + l in its high nibble (sub-block 2c low, 2c + 1 high).</para>
/// <para>Quantising differs from ggml's in one documented way: each sub-block's (scale, min) come from an
/// unweighted least-squares fit over a grid of 21 candidate steps around the min–max step (ggml weights each
/// squared error by |x| + rms(x) and searches the same kind of grid), so blocks may differ from llama.cpp's by a
/// level here and there; the 6-bit rounding of scales and mins (round half to even, as ggml's nearest_int), the
/// fp16 super-scales and the final re-rounding of every q against the stored scales follow ggml.</para>
/// </summary>
public static class Q4_KBlock
{
    public const int Size = 256;
    public const int SubBlock = 32;
    public const int Bytes = 2 + 2 + 12 + Size / 2;
    private const int ScalesOffset = 4;
    private const int QsOffset = 16;

    /// <summary>The 6-bit scale and min of sub-block j (0–7) from the 12 packed bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static (int Scale, int Min) ScaleMin(ReadOnlySpan<byte> scales, int j)
    {
        if (j < 4) return (scales[j] & 63, scales[j + 4] & 63);
        return ((scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4), (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
    }

    /// <summary>Packs eight 6-bit scales and mins (each 0–63) into 12 bytes.</summary>
    public static void PackScaleMin(ReadOnlySpan<int> scale, ReadOnlySpan<int> min, Span<byte> scales)
    {
        scales[..12].Clear();
        for (int j = 0; j < 8; j++)
        {
            int ls = scale[j], lm = min[j];
            if (j < 4)
            {
                scales[j] |= (byte)ls;
                scales[j + 4] |= (byte)lm;
            }
            else
            {
                scales[j + 4] = (byte)((ls & 0xF) | ((lm & 0xF) << 4));
                scales[j - 4] |= (byte)((ls >> 4) << 6);
                scales[j] |= (byte)((lm >> 4) << 6);
            }
        }
    }

    /// <summary>x: [256] → one block.</summary>
    public static void Quantize(ReadOnlySpan<float> x, Span<byte> block)
    {
        Span<float> subScale = stackalloc float[8], subMin = stackalloc float[8];
        float maxScale = 0f, maxMin = 0f;
        for (int j = 0; j < 8; j++)
        {
            (subScale[j], subMin[j]) = FitSubBlock(x.Slice(j * SubBlock, SubBlock));
            maxScale = MathF.Max(maxScale, subScale[j]);
            maxMin = MathF.Max(maxMin, subMin[j]);
        }
        float invScale = maxScale > 0f ? 63f / maxScale : 0f;
        float invMin = maxMin > 0f ? 63f / maxMin : 0f;
        Span<int> ls = stackalloc int[8], lm = stackalloc int[8];
        for (int j = 0; j < 8; j++)
        {
            ls[j] = Math.Min(63, (int)MathF.Round(invScale * subScale[j]));
            lm[j] = Math.Min(63, (int)MathF.Round(invMin * subMin[j]));
        }
        PackScaleMin(ls, lm, block.Slice(ScalesOffset, 12));
        float d = Half16.Write(block, maxScale / 63f);
        float dmin = Half16.Write(block[2..], maxMin / 63f);

        // Every q again against the scales as stored (6-bit, fp16), so the rounding of the scales is compensated.
        Span<byte> q = stackalloc byte[Size];
        for (int j = 0; j < 8; j++)
        {
            float step = d * ls[j], offset = dmin * lm[j];
            for (int i = 0; i < SubBlock; i++)
            {
                int level = step == 0f ? 0 : (int)MathF.Round((x[j * SubBlock + i] + offset) / step);
                q[j * SubBlock + i] = (byte)Math.Clamp(level, 0, 15);
            }
        }
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
                block[QsOffset + 32 * c + l] = (byte)(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
    }

    /// <summary>
    /// (scale, min) ≥ 0 with x ≈ scale · q − min, q ∈ [0, 15]: min–max first, then for 21 steps around it the
    /// levels are rounded and scale and offset refitted by least squares; the fit of least squared error wins.
    /// The offset is kept ≤ 0 (min ≥ 0) as ggml does, so a block of positive weights still decodes 0 exactly.
    /// </summary>
    private static (float Scale, float Min) FitSubBlock(ReadOnlySpan<float> x)
    {
        float lo = 0f, hi = float.NegativeInfinity;
        foreach (float v in x) { lo = MathF.Min(lo, v); hi = MathF.Max(hi, v); }
        if (hi <= lo) return (0f, -lo);
        float bestScale = (hi - lo) / 15f, bestOffset = lo;
        float bestError = SquaredError(x, bestScale, bestOffset);
        for (int s = 0; s <= 20; s++)
        {
            float iscale = (15f - 1f + 0.1f * s) / (hi - lo);
            double sq = 0, sx = 0, sqq = 0, sqx = 0;
            foreach (float v in x)
            {
                int level = Math.Clamp((int)MathF.Round(iscale * (v - lo)), 0, 15);
                sq += level; sx += v; sqq += level * level; sqx += level * v;
            }
            int n = x.Length;
            double det = n * sqq - sq * sq;
            if (det <= 0) continue;
            double a = (n * sqx - sq * sx) / det, b = (sx - a * sq) / n;
            if (b > 0) { b = 0; a = sqq > 0 ? sqx / sqq : 0; }
            if (a <= 0) continue;
            float err = SquaredError(x, (float)a, (float)b);
            if (err < bestError) { bestError = err; bestScale = (float)a; bestOffset = (float)b; }
        }
        return (bestScale, -bestOffset);
    }

    private static float SquaredError(ReadOnlySpan<float> x, float scale, float offset)
    {
        float err = 0f;
        foreach (float v in x)
        {
            int level = Math.Clamp((int)MathF.Round((v - offset) / scale), 0, 15);
            float e = scale * level + offset - v;
            err += e * e;
        }
        return err;
    }

    /// <summary>One block → y: [256].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dequantize(ReadOnlySpan<byte> block, Span<float> y)
    {
        float d = Half16.Read(block), dmin = Half16.Read(block[2..]);
        ReadOnlySpan<byte> scales = block.Slice(ScalesOffset, 12);
        for (int c = 0; c < 4; c++)
        {
            var (sc0, m0) = ScaleMin(scales, 2 * c);
            var (sc1, m1) = ScaleMin(scales, 2 * c + 1);
            float d0 = d * sc0, o0 = dmin * m0, d1 = d * sc1, o1 = dmin * m1;
            for (int l = 0; l < 32; l++)
            {
                byte b = block[QsOffset + 32 * c + l];
                y[64 * c + l] = d0 * (b & 0xF) - o0;
                y[64 * c + 32 + l] = d1 * (b >> 4) - o1;
            }
        }
    }
}
