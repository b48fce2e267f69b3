// Source: ggml's type traits (ggml.c, type_traits[]): block sizes and bytes per block of its quantised types, so
//         that a GGUF tensor of one of these types is a row-major array of these blocks with no conversion.
namespace NativeReasoner.Kernels.Quant;

/// <summary>
/// The packed weight formats of the quantised matrix products. A weight matrix [N, K] is stored row by row; each
/// row is K / <see cref="QuantFormatInfo.BlockSize"/> blocks of <see cref="QuantFormatInfo.BlockBytes"/> bytes in
/// ggml's byte layout (little-endian), so a GGUF tensor with ne0 = K, ne1 = N is such a matrix as it lies.
/// </summary>
public enum QuantFormat
{
    /// <summary>bfloat16, one weight per 2-byte "block" (the weights as a bf16 checkpoint stores them).</summary>
    BF16,

    /// <summary>32 weights: fp16 scale d, then 32 int8 q; weight = q · d.</summary>
    Q8_0,

    /// <summary>32 weights: fp16 scale d, then 16 bytes; byte j holds q[j] (low nibble) and q[j + 16] (high); weight = (q − 8) · d.</summary>
    Q4_0,

    /// <summary>
    /// 256 weights in 8 sub-blocks of 32: fp16 d, fp16 dmin, 12 bytes of eight 6-bit scales and eight 6-bit mins,
    /// 128 bytes of nibbles; weight = d · scale_j · q − dmin · min_j.
    /// </summary>
    Q4_K,

    /// <summary>
    /// 256 weights in 16 sub-blocks of 16: 128 bytes of low 4 bits, 64 bytes of high 2 bits, 16 int8 scales, fp16 d;
    /// weight = d · scale_j · (q − 32). Decoded only (GGUF files carry it; nothing here quantises to it).
    /// </summary>
    Q6_K,
}

public static class QuantFormatInfo
{
    /// <summary>Weights per block.</summary>
    public static int BlockSize(this QuantFormat format) => format switch
    {
        QuantFormat.BF16 => 1,
        QuantFormat.Q8_0 or QuantFormat.Q4_0 => 32,
        QuantFormat.Q4_K or QuantFormat.Q6_K => 256,
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "unknown quantised format"),
    };

    /// <summary>Bytes per block.</summary>
    public static int BlockBytes(this QuantFormat format) => format switch
    {
        QuantFormat.BF16 => 2,
        QuantFormat.Q8_0 => Q8_0Block.Bytes,
        QuantFormat.Q4_0 => Q4_0Block.Bytes,
        QuantFormat.Q4_K => Q4_KBlock.Bytes,
        QuantFormat.Q6_K => Q6_KBlock.Bytes,
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "unknown quantised format"),
    };

    /// <summary>The name ggml and GGUF use ("bf16", "q8_0", "q4_0", "q4_k", "q6_k"), lower case.</summary>
    public static string Name(this QuantFormat format) => format switch
    {
        QuantFormat.BF16 => "bf16",
        QuantFormat.Q8_0 => "q8_0",
        QuantFormat.Q4_0 => "q4_0",
        QuantFormat.Q4_K => "q4_k",
        QuantFormat.Q6_K => "q6_k",
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "unknown quantised format"),
    };

    /// <summary>The format called <paramref name="name"/> (case-insensitive), or a clear error listing the names.</summary>
    public static QuantFormat Parse(string name)
    {
        foreach (QuantFormat f in Enum.GetValues<QuantFormat>())
            if (string.Equals(f.Name(), name, StringComparison.OrdinalIgnoreCase)) return f;
        throw new ArgumentException(
            $"unknown quantised format '{name}': expected one of bf16, q8_0, q4_0, q4_k, q6_k", nameof(name));
    }

    /// <summary>True when <see cref="BlockQuantizer.Quantize"/> can write the format (Q6_K is decode-only).</summary>
    public static bool CanQuantize(this QuantFormat format) => format != QuantFormat.Q6_K;

    /// <summary>Bytes of one row of <paramref name="k"/> weights; k must be a multiple of the block size.</summary>
    public static long RowBytes(this QuantFormat format, long k)
    {
        int bs = format.BlockSize();
        if (k < 0 || k % bs != 0)
            throw new ArgumentException(
                $"a {format.Name()} row needs a length that is a multiple of {bs}, got {k}", nameof(k));
        return k / bs * format.BlockBytes();
    }
}
