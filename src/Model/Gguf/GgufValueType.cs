// Source: ggml's GGUF specification (ggml/docs/gguf.md, "gguf_metadata_value_type").
namespace NativeReasoner.Model.Gguf;

/// <summary>The type tag of a GGUF metadata value (a uint32 on disk).</summary>
public enum GgufValueType : uint
{
    UInt8 = 0,
    Int8 = 1,
    UInt16 = 2,
    Int16 = 3,
    UInt32 = 4,
    Int32 = 5,
    Float32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    UInt64 = 10,
    Int64 = 11,
    Float64 = 12,
}

public static class GgufValueTypeInfo
{
    /// <summary>Bytes of one scalar of this type; 0 for strings and arrays (variable length).</summary>
    public static int FixedSize(this GgufValueType type) => type switch
    {
        GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
        GgufValueType.UInt16 or GgufValueType.Int16 => 2,
        GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
        GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 => 8,
        _ => 0,
    };

    public static bool IsKnown(this GgufValueType type) => (uint)type <= (uint)GgufValueType.Float64;
}
