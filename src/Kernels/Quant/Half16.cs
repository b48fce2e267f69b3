// Source: IEEE 754 binary16, as ggml's GGML_FP32_TO_FP16 / GGML_FP16_TO_FP32 (round to nearest even).
using System.Buffers.Binary;

namespace NativeReasoner.Kernels.Quant;

/// <summary>The fp16 scales inside the blocks: little-endian 16-bit fields, converted with round-to-nearest-even.</summary>
internal static class Half16
{
    public static float Read(ReadOnlySpan<byte> at) =>
        (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(at));

    public static unsafe float Read(byte* at) => (float)BitConverter.UInt16BitsToHalf(*(ushort*)at);

    /// <summary>Writes fp16(value) and returns the value the block will decode to (the scale's rounding).</summary>
    public static float Write(Span<byte> at, float value)
    {
        Half h = (Half)value;
        BinaryPrimitives.WriteUInt16LittleEndian(at, BitConverter.HalfToUInt16Bits(h));
        return (float)h;
    }
}
