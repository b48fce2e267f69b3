// Source: ggml's element formats (ggml.h: ggml_fp16_t, ggml_bf16_t with round-to-nearest-even narrowing in
// ggml_compute_fp32_to_bf16) and its block formats, decoded through the quantised block types of Kernels/Quant.
using System.Runtime.InteropServices;
using NativeReasoner.Kernels.Quant;

namespace NativeReasoner.Model.Gguf;

/// <summary>Rows of a GGUF tensor to float32 and back, for every tensor type the engine reads.</summary>
public static class GgmlRowConversion
{
    /// <summary>The types a model can be read from.</summary>
    public static bool IsReadable(GgmlType type) => type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 or
        GgmlType.Q8_0 or GgmlType.Q4_0 or GgmlType.Q4_K or GgmlType.Q6_K;

    public const string ReadableTypes = "F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K";

    private static QuantFormat? Quantised(GgmlType type) => type switch
    {
        GgmlType.Q8_0 => QuantFormat.Q8_0,
        GgmlType.Q4_0 => QuantFormat.Q4_0,
        GgmlType.Q4_K => QuantFormat.Q4_K,
        GgmlType.Q6_K => QuantFormat.Q6_K,
        _ => null,
    };

    /// <summary>Decodes whole rows: <paramref name="source"/> holds destination.Length / rowElements rows.</summary>
    public static void ToFloat32(GgmlType type, ReadOnlySpan<byte> source, Span<float> destination)
    {
        switch (type)
        {
            case GgmlType.F32:
                MemoryMarshal.Cast<byte, float>(source)[..destination.Length].CopyTo(destination);
                return;
            case GgmlType.F16:
                {
                    var h = MemoryMarshal.Cast<byte, ushort>(source);
                    for (int i = 0; i < destination.Length; i++)
                        destination[i] = (float)BitConverter.UInt16BitsToHalf(h[i]);
                    return;
                }
            case GgmlType.BF16:
                {
                    var b = MemoryMarshal.Cast<byte, ushort>(source);
                    for (int i = 0; i < destination.Length; i++)
                        destination[i] = BitConverter.Int32BitsToSingle(b[i] << 16);
                    return;
                }
        }
        var format = Quantised(type) ?? throw new NotSupportedException(
            $"tensor type {type} cannot be read (supported: {ReadableTypes})");
        BlockQuantizer.DequantizeRow(format, source, destination);
    }

    /// <summary>
    /// Encodes <paramref name="source"/> (whole rows of <paramref name="rowElements"/>) as <paramref name="type"/>:
    /// F32, F16, BF16 (round to nearest even) or Q8_0/Q4_0/Q4_K (the quant kernels' quantisers).
    /// </summary>
    public static void FromFloat32(GgmlType type, ReadOnlySpan<float> source, Span<byte> destination, int rowElements)
    {
        switch (type)
        {
            case GgmlType.F32:
                MemoryMarshal.AsBytes(source).CopyTo(destination);
                return;
            case GgmlType.F16:
                {
                    var h = MemoryMarshal.Cast<byte, ushort>(destination);
                    for (int i = 0; i < source.Length; i++) h[i] = BitConverter.HalfToUInt16Bits((Half)source[i]);
                    return;
                }
            case GgmlType.BF16:
                {
                    var b = MemoryMarshal.Cast<byte, ushort>(destination);
                    for (int i = 0; i < source.Length; i++) b[i] = ToBFloat16(source[i]);
                    return;
                }
            case GgmlType.Q8_0 or GgmlType.Q4_0 or GgmlType.Q4_K:
                {
                    var format = Quantised(type)!.Value;
                    long rowBytes = format.RowBytes(rowElements);
                    for (int r = 0; r < source.Length / rowElements; r++)
                        BlockQuantizer.QuantizeRow(format, source.Slice(r * rowElements, rowElements),
                            destination.Slice(checked((int)(r * rowBytes)), (int)rowBytes));
                    return;
                }
            default:
                throw new NotSupportedException($"writing tensor type {type} is not supported (F32, F16, BF16, Q8_0, " +
                    "Q4_0, Q4_K)");
        }
    }

    /// <summary>float32 → bfloat16 bits, rounding to nearest even; NaN stays a (quiet) NaN.</summary>
    public static ushort ToBFloat16(float f)
    {
        uint bits = BitConverter.SingleToUInt32Bits(f);
        if (float.IsNaN(f)) return (ushort)((bits >> 16) | 0x40);
        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }
}
