using NativeReasoner.Kernels.Quant;
using Xunit;

namespace NativeReasoner.Tests.Quant;

/// <summary>
/// The packed formats byte for byte against blocks worked out by hand from ggml's layouts, and quantise →
/// dequantise round trips within each format's rounding.
/// </summary>
public sealed class BlockFormatTests
{
    [Fact]
    public void Q8_0_block_bytes_match_a_hand_computed_block()
    {
        var x = new float[32];
        // max |x| = 127 → d = 1 (fp16 0x3C00); roundf takes halves away from zero: −2.5 → −3, 0.5 → 1.
        x[0] = 127f; x[1] = -2.5f; x[2] = 0.5f; x[3] = 1.49f; x[31] = -127f;
        var block = new byte[Q8_0Block.Bytes];
        Q8_0Block.Quantize(x, block);
        var expected = new byte[34];
        expected[1] = 0x3C; expected[2] = 0x7F; expected[3] = 0xFD; expected[4] = 0x01; expected[5] = 0x01;
        expected[33] = 0x81;
        Assert.Equal(expected, block);

        var y = new float[32];
        Q8_0Block.Dequantize(block, y);
        Assert.Equal([127f, -3f, 1f, 1f], y[..4]);
        Assert.Equal(-127f, y[31]);
    }

    [Fact]
    public void Q4_0_block_bytes_match_a_hand_computed_block()
    {
        var x = new float[32];
        // The first weight of largest magnitude is −16 → d = −16 / −8 = 2 (fp16 0x4000); q = min(15, ⌊x/2 + 8.5⌋).
        x[5] = -16f; x[17] = 16f; x[1] = 3f; x[16] = 14f; x[20] = -1f;
        var block = new byte[Q4_0Block.Bytes];
        Q4_0Block.Quantize(x, block);
        var expected = Enumerable.Repeat((byte)0x88, 18).ToArray();
        expected[0] = 0x00; expected[1] = 0x40;
        expected[2 + 0] = 0xF8; // q[0] = 8, q[16] = 15
        expected[2 + 1] = 0xFA; // q[1] = 10, q[17] = 16 clamped to 15
        expected[2 + 4] = 0x88; // q[4] = 8, q[20] = ⌊−0.5 + 8.5⌋ = 8
        expected[2 + 5] = 0x80; // q[5] = 0, q[21] = 8
        Assert.Equal(expected, block);

        var y = new float[32];
        Q4_0Block.Dequantize(block, y);
        Assert.Equal(-16f, y[5]);
        Assert.Equal(14f, y[17]); // the clamp: +16 decodes one step short
        Assert.Equal(4f, y[1]);
        Assert.Equal(14f, y[16]);
        Assert.Equal(0f, y[20]);
    }

    [Fact]
    public void Q4_K_scales_and_mins_pack_as_ggml_packs_them()
    {
        int[] scales = [1, 2, 3, 4, 63, 17, 32, 48];
        int[] mins = [5, 6, 7, 8, 33, 0, 15, 62];
        var packed = new byte[12];
        Q4_KBlock.PackScaleMin(scales, mins, packed);
        // Worked by hand: sub-blocks 4–7 put their low nibbles in bytes 8–11 and their top two bits above the
        // 6-bit values of bytes 0–3 (scales) and 4–7 (mins).
        Assert.Equal(new byte[] { 0xC1, 0x42, 0x83, 0xC4, 0x85, 0x06, 0x07, 0xC8, 0x1F, 0x01, 0xF0, 0xE0 }, packed);
        for (int j = 0; j < 8; j++) Assert.Equal((scales[j], mins[j]), Q4_KBlock.ScaleMin(packed, j));
    }

    [Fact]
    public void Q4_K_dequantizes_a_hand_built_block()
    {
        var block = new byte[Q4_KBlock.Bytes];
        block[1] = 0x3C; // d = 1
        block[3] = 0x38; // dmin = 0.5
        int[] scales = [1, 2, 3, 4, 5, 6, 7, 8], mins = [0, 1, 2, 3, 4, 5, 6, 7];
        Q4_KBlock.PackScaleMin(scales, mins, block.AsSpan(4, 12));
        for (int i = 16; i < 144; i++) block[i] = 0x21; // low nibble 1, high nibble 2
        block[16 + 32 * 1 + 5] = 0xF0;                    // weight 69 (sub-block 2) q = 0, weight 101 (sub-block 3) q = 15
        var y = new float[256];
        Q4_KBlock.Dequantize(block, y);
        for (int i = 0; i < 256; i++)
        {
            int j = i / 32, q = j % 2 == 0 ? 1 : 2;
            if (i == 69) q = 0;
            if (i == 101) q = 15;
            Assert.Equal((j + 1) * q - 0.5f * j, y[i]);
        }
        Assert.Equal(-1f, y[69]);
        Assert.Equal(58.5f, y[101]);
    }

    [Fact]
    public void Q6_K_dequantizes_a_hand_built_block()
    {
        var block = new byte[Q6_KBlock.Bytes];
        for (int s = 0; s < 16; s++) block[Q6_KBlock.ScalesOffset + s] = 1;
        block[Q6_KBlock.ScalesOffset + 0] = 2;
        block[Q6_KBlock.ScalesOffset + 4] = 0xFF; // −1
        block[Q6_KBlock.DOffset + 1] = 0x3C;       // d = 1
        block[0] = 0x21;                            // ql[0]: low nibble 1 (weight 0), high nibble 2 (weight 64)
        block[Q6_KBlock.QhOffset] = 0xE4;           // qh[0] = 11 10 01 00: high bits 0, 1, 2, 3 of weights 0, 32, 64, 96
        block[64 + 33] = 0x0F;                      // second half, ql[1 + 32]: low nibble of weight 128 + 1 + 32
        var y = new float[256];
        Q6_KBlock.Dequantize(block, y);
        Assert.Equal(2f * (1 - 32), y[0]);            // scale 0
        Assert.Equal(1f * (16 - 32), y[32]);          // scale 2
        Assert.Equal(-1f * (2 + 32 - 32), y[64]);     // scale 4 = −1
        Assert.Equal(1f * (48 - 32), y[96]);          // scale 6
        Assert.Equal(1f * (15 - 32), y[128 + 33]);    // second half: scale 8 + 1/16 + 2 = 10
        Assert.Equal(2f * -32, y[1]);
        Assert.Equal(-1f * -32, y[64 + 15]);
        Assert.Equal(1f * -32, y[255]);
    }

    [Theory]
    [InlineData(QuantFormat.Q8_0)]
    [InlineData(QuantFormat.Q4_0)]
    [InlineData(QuantFormat.Q4_K)]
    [InlineData(QuantFormat.BF16)]
    public void Round_trips_stay_within_the_formats_rounding(QuantFormat format)
    {
        var rng = new Random(7);
        const int rows = 5, k = 512;
        var w = new float[rows * k];
        for (int i = 0; i < w.Length; i++)
        {
            // Gaussian with a few outliers and a block of positive values (Q4_K's offset clamp).
            double g = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
            w[i] = (float)(i % 97 == 0 ? 6 * g : g) * 0.02f;
            if (i >= 256 && i < 288) w[i] = MathF.Abs(w[i]) + 0.01f;
        }
        byte[] packed = BlockQuantizer.Quantize(format, w, rows, k);
        Assert.Equal(rows * format.RowBytes(k), packed.Length);
        float[] back = BlockQuantizer.Dequantize(format, packed, rows, k);
        int bs = format == QuantFormat.Q4_K ? 32 : format.BlockSize();
        double errSq = 0, sumSq = 0;
        for (int b = 0; b < w.Length / bs; b++)
        {
            float amax = 0;
            for (int i = b * bs; i < (b + 1) * bs; i++) amax = MathF.Max(amax, MathF.Abs(w[i]));
            for (int i = b * bs; i < (b + 1) * bs; i++)
            {
                float err = MathF.Abs(back[i] - w[i]);
                Assert.False(float.IsNaN(back[i]));
                errSq += (double)err * err;
                sumSq += (double)w[i] * w[i];
                // Per element: half a step of the block's scale, plus the fp16 rounding of the scale over the
                // largest level; Q4_0's clamp at +8 costs a whole step.
                float bound = format switch
                {
                    QuantFormat.Q8_0 => amax / 127f * (0.5f + 127f / 2048f) * 1.0001f,
                    QuantFormat.Q4_0 => amax / 8f * (1f + 8f / 2048f) * 1.0001f,
                    QuantFormat.BF16 => MathF.Abs(w[i]) / 256f,
                    // Q4_K: the least-squares fit may clip a sub-block's extreme by more than half a step to
                    // serve the rest better (the rms limit below holds the whole), so only a loose bound here.
                    _ => amax / 4f,
                };
                Assert.True(err <= bound, $"{format.Name()} weight {i}: {w[i]} → {back[i]}, error {err} > {bound}");
            }
        }
        double rel = Math.Sqrt(errSq / sumSq);
        double limit = format switch
        {
            QuantFormat.Q8_0 => 0.01,
            QuantFormat.Q4_0 => 0.15,
            QuantFormat.Q4_K => 0.10,
            _ => 0.004,
        };
        Assert.True(rel < limit, $"{format.Name()}: relative rms error {rel}");
    }

    [Fact]
    public void Q4_K_fit_beats_plain_min_max()
    {
        // The least-squares search must do at least as well as min–max on every sub-block, so the whole row too.
        var rng = new Random(11);
        var w = new float[256];
        for (int i = 0; i < w.Length; i++) w[i] = (float)(rng.NextDouble() * rng.NextDouble() - 0.3);
        float[] back = BlockQuantizer.Dequantize(QuantFormat.Q4_K, BlockQuantizer.Quantize(QuantFormat.Q4_K, w, 1, 256), 1, 256);
        double err = 0, minMaxErr = 0;
        for (int j = 0; j < 8; j++)
        {
            float lo = 0, hi = float.MinValue;
            for (int i = 32 * j; i < 32 * j + 32; i++) { lo = MathF.Min(lo, w[i]); hi = MathF.Max(hi, w[i]); }
            float step = (hi - lo) / 15;
            for (int i = 32 * j; i < 32 * j + 32; i++)
            {
                float mm = lo + step * MathF.Round((w[i] - lo) / step);
                minMaxErr += (mm - w[i]) * (double)(mm - w[i]);
                err += (back[i] - w[i]) * (double)(back[i] - w[i]);
            }
        }
        // The stored scales are 6-bit and fp16, min–max here is not: allow their rounding a little room.
        Assert.True(err < minMaxErr * 1.05, $"least-squares fit {err} vs min–max {minMaxErr}");
    }

    [Fact]
    public void Zero_and_constant_blocks_decode_exactly()
    {
        foreach (var format in new[] { QuantFormat.Q8_0, QuantFormat.Q4_0, QuantFormat.Q4_K })
        {
            var zeros = new float[256];
            Assert.All(BlockQuantizer.Dequantize(format, BlockQuantizer.Quantize(format, zeros, 1, 256), 1, 256),
                v => Assert.Equal(0f, v));
        }
        var negative = Enumerable.Repeat(-0.75f, 256).ToArray();
        Assert.All(BlockQuantizer.Dequantize(QuantFormat.Q4_K, BlockQuantizer.Quantize(QuantFormat.Q4_K, negative, 1, 256), 1, 256),
            v => Assert.Equal(-0.75f, v, 1e-3f));
    }

    [Fact]
    public void Bad_input_is_a_clear_error()
    {
        var e = Assert.Throws<ArgumentException>(() => BlockQuantizer.Quantize(QuantFormat.Q4_K, new float[100], 1, 100));
        Assert.Contains("multiple of 256", e.Message);
        var nan = new float[32];
        nan[3] = float.NaN;
        e = Assert.Throws<ArgumentException>(() => BlockQuantizer.Quantize(QuantFormat.Q8_0, nan, 1, 32));
        Assert.Contains("weight 3", e.Message);
        Assert.Throws<NotSupportedException>(() => BlockQuantizer.Quantize(QuantFormat.Q6_K, new float[256], 1, 256));
        e = Assert.Throws<ArgumentException>(() => QuantFormatInfo.Parse("q5_k"));
        Assert.Contains("q4_k", e.Message);
        Assert.Equal(QuantFormat.Q4_K, QuantFormatInfo.Parse("Q4_K"));
    }
}
