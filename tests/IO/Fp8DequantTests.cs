using System.Runtime.InteropServices;
using System.Text.Json;
using NativeReasoner.IO;
using NativeReasoner.Kernels;
using Xunit;

namespace NativeReasoner.Tests.IO;

/// <summary>
/// float8_e4m3fn decoding and DeepSeek-V3 block dequantisation, bit for bit against tests/reference/fp8_dequant.py
/// (a port of the official weight_dequant).
/// </summary>
public sealed class Fp8DequantTests : IDisposable
{
    private static readonly string FixturePath =
        Path.Combine(AppContext.BaseDirectory, "fixtures", "fp8_dequant.safetensors");

    private readonly string _dir = Path.Combine(Path.GetTempPath(), "nr-fp8-" + Guid.NewGuid().ToString("N"));

    public Fp8DequantTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    /// <summary>Equal bits, or both NaN (the format has two NaN codes; their payloads are not part of it).</summary>
    private static void SameFloat(float expected, float actual, string where)
    {
        if (float.IsNaN(expected) || float.IsNaN(actual))
        {
            Assert.True(float.IsNaN(expected) && float.IsNaN(actual), $"{where}: expected {expected}, got {actual}");
            return;
        }
        Assert.True(BitConverter.SingleToUInt32Bits(expected) == BitConverter.SingleToUInt32Bits(actual),
            $"{where}: expected {expected:R}, got {actual:R}");
    }

    [Fact]
    public void Decode_FormatLandmarks()
    {
        Assert.Equal(448f, Float8E4M3.ToFloat(0x7E));
        Assert.Equal(-448f, Float8E4M3.ToFloat(0xFE));
        Assert.Equal(Float8E4M3.MaxValue, Float8E4M3.ToFloat(0x7E));
        Assert.True(float.IsNaN(Float8E4M3.ToFloat(0x7F)));
        Assert.True(float.IsNaN(Float8E4M3.ToFloat(0xFF)));
        Assert.Equal(2, Enumerable.Range(0, 256).Count(c => float.IsNaN(Float8E4M3.ToFloat((byte)c))));
        Assert.Equal(0, Enumerable.Range(0, 256).Count(c => float.IsInfinity(Float8E4M3.ToFloat((byte)c))));
        Assert.Equal(0x80000000u, BitConverter.SingleToUInt32Bits(Float8E4M3.ToFloat(0x80))); // −0
        Assert.Equal(MathF.ScaleB(1f, -9), Float8E4M3.ToFloat(0x01));   // smallest subnormal 1/8 · 2⁻⁶
        Assert.Equal(MathF.ScaleB(1f, -6), Float8E4M3.ToFloat(0x08));   // smallest normal
        Assert.Equal(1f, Float8E4M3.ToFloat(0x38));                      // exponent field 7 = bias
        Assert.Equal(-1.875f, Float8E4M3.ToFloat(0xBF));
        Assert.Equal(240f, Float8E4M3.ToFloat(0x77));                    // 1.875 · 2⁷
    }

    [Fact]
    public void Decode_AllCodesMatchReference()
    {
        using var f = SafetensorsFile.Open(FixturePath);
        float[] expected = f.ReadFloat32("codes");
        Assert.Equal(256, expected.Length);
        var codes = Enumerable.Range(0, 256).Select(c => (byte)c).ToArray();
        var decoded = new float[256];
        Float8E4M3.Decode(codes, decoded);
        for (int c = 0; c < 256; c++) SameFloat(expected[c], decoded[c], $"code 0x{c:X2}");
    }

    public static TheoryData<string> Cases() => ["all_codes", "single_partial", "row_exact"];

    [Theory]
    [MemberData(nameof(Cases))]
    public void Dequantize_BitExactAgainstOfficialPort(string name)
    {
        using var f = SafetensorsFile.Open(FixturePath);
        var meta = JsonDocument.Parse(f.Metadata["cases"]).RootElement.EnumerateArray()
            .Single(c => c.GetProperty("name").GetString() == name);
        int rows = meta.GetProperty("rows").GetInt32(), cols = meta.GetProperty("cols").GetInt32();
        int block = meta.GetProperty("block").GetInt32();
        SafetensorsEntry q = f.GetEntry(name + ".q");
        Assert.Equal(DType.Float8E4M3, q.DType);
        Assert.Equal([rows, cols], q.Shape);
        float[] scales = f.ReadFloat32(name + ".scale");
        float[] expected = f.ReadFloat32(name + ".expected");
        ushort[] expectedBf16 = MemoryMarshal.Cast<byte, ushort>(f.GetBytes(name + ".expected_bf16")).ToArray();

        var y = new float[rows * cols];
        Fp8BlockDequant.Dequantize(f.GetBytes(name + ".q"), rows, cols, scales, block, block, y);
        var y16 = new ushort[rows * cols];
        Fp8BlockDequant.DequantizeToBFloat16(f.GetBytes(name + ".q"), rows, cols, scales, block, block, y16);
        int nans = 0;
        for (int i = 0; i < y.Length; i++)
        {
            SameFloat(expected[i], y[i], $"{name}[{i / cols}, {i % cols}]");
            if (float.IsNaN(expected[i]))
            {
                nans++;
                Assert.Equal(0x7F80, y16[i] & 0x7F80);
                Assert.NotEqual(0, y16[i] & 0x7F);
            }
            else
            {
                Assert.True(expectedBf16[i] == y16[i],
                    $"{name} bf16 [{i / cols}, {i % cols}]: {expectedBf16[i]:X4} vs {y16[i]:X4}");
            }
        }
        if (name == "all_codes") Assert.True(nans >= 4, "the all-codes case must hold both NaN codes");
    }

    [Fact]
    public void Dequantize_PartialBlocksUseTheirOwnScale()
    {
        // [3, 5] in 2×2 blocks: scale [2, 3]; every code 0x38 (= 1.0), so each output is its block's scale.
        byte[] q = Enumerable.Repeat((byte)0x38, 15).ToArray();
        float[] s = [1, 2, 3, 4, 5, 6];
        var y = new float[15];
        Fp8BlockDequant.Dequantize(q, 3, 5, s, 2, 2, y);
        float[] want = [1, 1, 2, 2, 3, 1, 1, 2, 2, 3, 4, 4, 5, 5, 6];
        Assert.Equal(want, y);
        Assert.Equal((2, 3), Fp8BlockDequant.ScaleShape(3, 5, 2, 2));
        var bad = Assert.Throws<ArgumentException>(() => Fp8BlockDequant.Dequantize(q, 3, 5, s[..5], 2, 2, y));
        Assert.Contains("expected [2, 3]", bad.Message);
    }

    [Fact]
    public void RoundToBFloat16_NearestEven()
    {
        Assert.Equal(0x3F80, Fp8BlockDequant.RoundToBFloat16(1f));
        static ushort Round(uint bits) => Fp8BlockDequant.RoundToBFloat16(BitConverter.UInt32BitsToSingle(bits));
        Assert.Equal(0x3F80, Round(0x3F808000)); // tie → even (down)
        Assert.Equal(0x3F82, Round(0x3F818000)); // tie → even (up)
        Assert.Equal(0x3F81, Round(0x3F808001));
        ushort nan = Fp8BlockDequant.RoundToBFloat16(float.NaN);
        Assert.True(float.IsNaN(BitConverter.UInt32BitsToSingle((uint)nan << 16)));
    }

    [Fact]
    public void F8Tensor_RoundTripsThroughWriterAndReader()
    {
        byte[] codes = Enumerable.Range(0, 256).Select(c => (byte)c).ToArray();
        string p = Path.Combine(_dir, "f8.safetensors");
        SafetensorsWriter.Write(p,
        [
            new("w", DType.Float8E4M3, [16, 16], codes),
            new("w_scale_inv", DType.Float32, [1, 1], BitConverter.GetBytes(0.5f)),
        ]);
        using var f = SafetensorsFile.Open(p);
        Assert.Equal(DType.Float8E4M3, f.GetEntry("w").DType);
        Assert.True(f.GetBytes("w").SequenceEqual(codes));
        float[] raw = f.ReadFloat32("w"); // decoded, scale not applied
        for (int c = 0; c < 256; c++) SameFloat(Float8E4M3.ToFloat((byte)c), raw[c], $"code {c}");
        Assert.Contains("\"dtype\":\"F8_E4M3\"", System.Text.Encoding.UTF8.GetString(File.ReadAllBytes(p)));
    }

    [Fact]
    public void ScaleInAnotherShard_IsFound()
    {
        byte[] codes = Enumerable.Range(0, 130 * 3).Select(i => (byte)(i % 0x7E)).ToArray();
        float[] s = [0.25f, 4f];
        SafetensorsCheckpoint.Write(_dir,
        [
            new("w", DType.Float8E4M3, [130, 3], codes),
            new("w_scale_inv", DType.Float32, [2, 1], MemoryMarshal.AsBytes(s.AsSpan()).ToArray()),
        ], maxShardBytes: 390);
        using var ckpt = SafetensorsCheckpoint.Open(_dir);
        Assert.Equal(2, ckpt.Files.Count);
        Assert.NotSame(ckpt.GetFile("w"), ckpt.GetFile("w_scale_inv"));
        var y = new float[130 * 3];
        Fp8BlockDequant.ReadDequantized(ckpt, "w", 128, 128, y);
        for (int i = 0; i < y.Length; i++)
            Assert.Equal(Float8E4M3.ToFloat(codes[i]) * (i / 3 < 128 ? 0.25f : 4f), y[i]);
    }

    [Fact]
    public void CheckpointErrors_NameTheTensorAndExpectation()
    {
        SafetensorsCheckpoint.Write(_dir,
        [
            new("w", DType.Float8E4M3, [4, 4], new byte[16]),
            new("w_scale_inv", DType.Float32, [2, 1], new byte[8]),
            new("v", DType.Float8E4M3, [4, 4], new byte[16]),
            new("x", DType.Float32, [4, 4], new byte[64]),
        ]);
        using var ckpt = SafetensorsCheckpoint.Open(_dir);
        var y = new float[16];
        var wrongShape = Assert.Throws<SafetensorsException>(
            () => Fp8BlockDequant.ReadDequantized(ckpt, "w", 128, 128, y));
        Assert.Equal("w_scale_inv", wrongShape.TensorName);
        Assert.Contains("needs [1, 1]", wrongShape.Message);
        var missing = Assert.Throws<SafetensorsException>(
            () => Fp8BlockDequant.ReadDequantized(ckpt, "v", 128, 128, y));
        Assert.Contains("lacks 'v_scale_inv'", missing.Message);
        var notFp8 = Assert.Throws<SafetensorsException>(
            () => Fp8BlockDequant.ReadDequantized(ckpt, "x", 128, 128, y));
        Assert.Contains("expected an F8_E4M3 weight, found F32", notFp8.Message);
    }
}
