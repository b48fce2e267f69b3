// Source: ggml's GGUF specification (ggml/docs/gguf.md, "gguf_metadata_value_t").
namespace NativeReasoner.Model.Gguf;

/// <summary>
/// One metadata value: a scalar (boxed .NET value of the matching type: byte, sbyte, ushort, short, uint, int, float,
/// bool, ulong, long, double), a string, or a <see cref="GgufArray"/>.
/// </summary>
public sealed class GgufValue
{
    public GgufValueType Type { get; }
    public object Value { get; }

    private GgufValue(GgufValueType type, object value)
    {
        Type = type;
        Value = value;
    }

    public static GgufValue Of(byte v) => new(GgufValueType.UInt8, v);
    public static GgufValue Of(sbyte v) => new(GgufValueType.Int8, v);
    public static GgufValue Of(ushort v) => new(GgufValueType.UInt16, v);
    public static GgufValue Of(short v) => new(GgufValueType.Int16, v);
    public static GgufValue Of(uint v) => new(GgufValueType.UInt32, v);
    public static GgufValue Of(int v) => new(GgufValueType.Int32, v);
    public static GgufValue Of(float v) => new(GgufValueType.Float32, v);
    public static GgufValue Of(bool v) => new(GgufValueType.Bool, v);
    public static GgufValue Of(string v) => new(GgufValueType.String, v ?? throw new ArgumentNullException(nameof(v)));
    public static GgufValue Of(ulong v) => new(GgufValueType.UInt64, v);
    public static GgufValue Of(long v) => new(GgufValueType.Int64, v);
    public static GgufValue Of(double v) => new(GgufValueType.Float64, v);
    public static GgufValue Of(GgufArray v) =>
        new(GgufValueType.Array, v ?? throw new ArgumentNullException(nameof(v)));

    /// <summary>The value as a 64-bit integer when it is one of the integer types (unsigned 64-bit only up to
    /// 2^63−1).</summary>
    public bool TryGetInteger(out long value)
    {
        switch (Value)
        {
            case byte b: value = b; return true;
            case sbyte sb: value = sb; return true;
            case ushort us: value = us; return true;
            case short s: value = s; return true;
            case uint ui: value = ui; return true;
            case int i: value = i; return true;
            case long l: value = l; return true;
            case ulong ul when ul <= long.MaxValue: value = (long)ul; return true;
            default: value = 0; return false;
        }
    }

    /// <summary>The value as a double when it is a float or an integer type.</summary>
    public bool TryGetNumber(out double value)
    {
        switch (Value)
        {
            case float f: value = f; return true;
            case double d: value = d; return true;
            default:
                bool ok = TryGetInteger(out long l);
                value = l;
                return ok;
        }
    }

    public override bool Equals(object? obj) => obj is GgufValue o && o.Type == Type &&
        (Value is GgufArray a ? a.Equals(o.Value) : Value.Equals(o.Value));

    public override int GetHashCode() => HashCode.Combine(Type, Value is GgufArray ? 0 : Value.GetHashCode());

    public override string ToString() => Value switch
    {
        string s => s.Length > 60 ? $"\"{s[..57]}...\"" : $"\"{s}\"",
        GgufArray a => a.ToString(),
        _ => $"{Value} ({Type})",
    };
}

/// <summary>
/// A metadata array: all items share one type. <see cref="Items"/> is a typed .NET array (string[] for strings,
/// GgufArray[] for nested arrays, byte[], int[], float[] … for scalars).
/// </summary>
public sealed class GgufArray
{
    public GgufValueType ElementType { get; }
    public Array Items { get; }
    public int Length => Items.Length;

    public GgufArray(GgufValueType elementType, Array items)
    {
        ArgumentNullException.ThrowIfNull(items);
        Type expected = ClrType(elementType);
        if (items.GetType().GetElementType() != expected)
            throw new ArgumentException($"a GGUF {elementType} array holds {expected.Name} items, got " +
                $"{items.GetType().Name}", nameof(items));
        ElementType = elementType;
        Items = items;
    }

    public static GgufArray Of(string[] items) => new(GgufValueType.String, items);
    public static GgufArray Of(int[] items) => new(GgufValueType.Int32, items);
    public static GgufArray Of(float[] items) => new(GgufValueType.Float32, items);
    public static GgufArray Of(uint[] items) => new(GgufValueType.UInt32, items);

    /// <summary>The .NET element type that holds items of <paramref name="type"/>.</summary>
    public static Type ClrType(GgufValueType type) => type switch
    {
        GgufValueType.UInt8 => typeof(byte),
        GgufValueType.Int8 => typeof(sbyte),
        GgufValueType.UInt16 => typeof(ushort),
        GgufValueType.Int16 => typeof(short),
        GgufValueType.UInt32 => typeof(uint),
        GgufValueType.Int32 => typeof(int),
        GgufValueType.Float32 => typeof(float),
        GgufValueType.Bool => typeof(bool),
        GgufValueType.String => typeof(string),
        GgufValueType.Array => typeof(GgufArray),
        GgufValueType.UInt64 => typeof(ulong),
        GgufValueType.Int64 => typeof(long),
        GgufValueType.Float64 => typeof(double),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "not a GGUF value type"),
    };

    public override bool Equals(object? obj)
    {
        if (obj is not GgufArray o || o.ElementType != ElementType || o.Length != Length) return false;
        for (int i = 0; i < Length; i++)
            if (!Equals(Items.GetValue(i), o.Items.GetValue(i))) return false;
        return true;
    }

    public override int GetHashCode() => HashCode.Combine(ElementType, Length);

    public override string ToString() => $"[{ElementType} × {Length}]";
}
