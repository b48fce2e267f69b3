// float8_e4m3fn as defined in "FP8 Formats for Deep Learning" (arXiv:2209.05433), the weight format of the
// DeepSeek-V3 checkpoints (arXiv:2412.19437, section 3.3).
namespace NativeReasoner.IO;

/// <summary>
/// Decoding of float8_e4m3fn bytes: 1 sign bit, 4 exponent bits with bias 7, 3 mantissa bits. The "fn" variant
/// has no infinities: only S.1111.111 (0x7F, 0xFF) is NaN, so the largest finite magnitude is
/// 1.75 · 2⁸ = 448. Exponent field 0 holds the subnormals m/8 · 2⁻⁶. Every one of the 256 values is exact
/// in float32, so decoding is a table lookup.
/// </summary>
public static class Float8E4M3
{
    /// <summary>Largest finite magnitude.</summary>
    public const float MaxValue = 448f;

    private static readonly float[] s_table = BuildTable();

    /// <summary>The float32 value of one code (NaN for 0x7F and 0xFF, −0 for 0x80).</summary>
    public static float ToFloat(byte code) => s_table[code];

    /// <summary>Decodes <paramref name="codes"/> into <paramref name="destination"/> (same length).</summary>
    public static void Decode(ReadOnlySpan<byte> codes, Span<float> destination)
    {
        if (destination.Length != codes.Length)
            throw new ArgumentException(
                $"float8 decode: {codes.Length} codes but the destination holds {destination.Length} floats",
                nameof(destination));
        ReadOnlySpan<float> table = s_table;
        for (int i = 0; i < codes.Length; i++) destination[i] = table[codes[i]];
    }

    /// <summary>The value by the format's definition (builds the table; tests check it against the spec).</summary>
    internal static float DecodeByDefinition(byte code)
    {
        int sign = code >> 7, exponent = (code >> 3) & 0xF, mantissa = code & 0x7;
        if (exponent == 0xF && mantissa == 0x7) return float.NaN;
        // Subnormal: 0.m · 2^(1 − bias); normal: 1.m · 2^(e − bias). Both products are exact in float32.
        float magnitude = exponent == 0
            ? mantissa / 8f * MathF.ScaleB(1f, 1 - 7)
            : (1f + mantissa / 8f) * MathF.ScaleB(1f, exponent - 7);
        return sign == 1 ? -magnitude : magnitude;
    }

    private static float[] BuildTable()
    {
        var table = new float[256];
        for (int c = 0; c < 256; c++) table[c] = DecodeByDefinition((byte)c);
        return table;
    }
}
