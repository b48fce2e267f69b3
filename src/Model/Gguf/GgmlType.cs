// Source: ggml's GGUF specification (ggml/docs/gguf.md, "ggml_type") and the block sizes of ggml's type traits
// (ggml/src/ggml.c, type_traits: blck_size, type_size).
namespace NativeReasoner.Model.Gguf;

/// <summary>The element type of a GGUF tensor (ggml_type, a uint32 on disk). Values are ggml's.</summary>
public enum GgmlType : uint
{
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    BF16 = 30,
}

public static class GgmlTypeInfo
{
    /// <summary>
    /// Elements per block and bytes per block of the types whose layout is known here; false for ggml types this
    /// reader does not size (the IQ formats, removed Q4_2/Q4_3 …) and for values outside ggml's list.
    /// </summary>
    public static bool TryGetBlock(GgmlType type, out int blockElements, out int blockBytes)
    {
        (blockElements, blockBytes) = type switch
        {
            GgmlType.F32 => (1, 4),
            GgmlType.F16 => (1, 2),
            GgmlType.BF16 => (1, 2),
            GgmlType.F64 => (1, 8),
            GgmlType.I8 => (1, 1),
            GgmlType.I16 => (1, 2),
            GgmlType.I32 => (1, 4),
            GgmlType.I64 => (1, 8),
            GgmlType.Q4_0 => (32, 18),  // f16 scale + 16 bytes of nibbles
            GgmlType.Q4_1 => (32, 20),  // f16 scale, f16 min + 16 bytes
            GgmlType.Q5_0 => (32, 22),  // f16 scale + 4 bytes of high bits + 16 bytes
            GgmlType.Q5_1 => (32, 24),
            GgmlType.Q8_0 => (32, 34),  // f16 scale + 32 int8
            GgmlType.Q8_1 => (32, 36),
            GgmlType.Q2_K => (256, 84),
            GgmlType.Q3_K => (256, 110),
            GgmlType.Q4_K => (256, 144), // f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles
            GgmlType.Q5_K => (256, 176),
            GgmlType.Q6_K => (256, 210), // 128 low nibbles, 64 high 2-bits, 16 int8 scales, f16 d
            GgmlType.Q8_K => (256, 292),
            _ => (0, 0),
        };
        return blockElements > 0;
    }

    /// <summary>Bytes of a row of <paramref name="elements"/> values (a whole number of blocks).</summary>
    public static long RowBytes(GgmlType type, long elements)
    {
        if (!TryGetBlock(type, out int be, out int bb))
            throw new ArgumentOutOfRangeException(nameof(type), type, "ggml type without a known block layout");
        if (elements % be != 0)
            throw new ArgumentException($"{type} stores rows in blocks of {be} elements; a row of {elements} is not " +
                "a whole number of blocks", nameof(elements));
        return elements / be * bb;
    }
}
