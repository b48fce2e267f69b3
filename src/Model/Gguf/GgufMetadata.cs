// Source: ggml's GGUF specification (ggml/docs/gguf.md, "Standardized key-value pairs").
namespace NativeReasoner.Model.Gguf;

/// <summary>
/// The key-value metadata of a GGUF file, in file order. The typed getters throw a <see cref="GgufException"/> naming
/// the key and the type expected when a key is missing or holds another type.
/// </summary>
public sealed class GgufMetadata
{
    private readonly List<KeyValuePair<string, GgufValue>> _ordered = [];
    private readonly Dictionary<string, GgufValue> _byKey = new(StringComparer.Ordinal);

    /// <summary>The file the metadata came from (or will be written to), for error messages.</summary>
    public string Source { get; }

    public GgufMetadata(string source = "gguf") => Source = source;

    public IReadOnlyList<KeyValuePair<string, GgufValue>> Entries => _ordered;
    public int Count => _ordered.Count;
    public bool Contains(string key) => _byKey.ContainsKey(key);
    public bool TryGet(string key, out GgufValue value) => _byKey.TryGetValue(key, out value!);

    /// <summary>Adds a key; a key already present is an error (GGUF keys are unique).</summary>
    public void Add(string key, GgufValue value)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        if (!_byKey.TryAdd(key, value))
            throw new GgufException(Source, $"metadata key '{key}'", "appears twice (keys must be unique)");
        _ordered.Add(new(key, value));
    }

    public void Add(string key, string value) => Add(key, GgufValue.Of(value));
    public void Add(string key, uint value) => Add(key, GgufValue.Of(value));
    public void Add(string key, int value) => Add(key, GgufValue.Of(value));
    public void Add(string key, float value) => Add(key, GgufValue.Of(value));
    public void Add(string key, bool value) => Add(key, GgufValue.Of(value));
    public void Add(string key, GgufArray value) => Add(key, GgufValue.Of(value));

    private GgufValue Required(string key, string expected)
    {
        if (!_byKey.TryGetValue(key, out var v))
            throw new GgufException(Source, $"metadata key '{key}'", $"missing (expected {expected})");
        return v;
    }

    private GgufException Wrong(string key, GgufValue v, string expected) =>
        new(Source, $"metadata key '{key}'", $"is {v}, expected {expected}");

    public string GetString(string key)
    {
        var v = Required(key, "a string");
        return v.Value as string ?? throw Wrong(key, v, "a string");
    }

    public string? GetStringOrNull(string key) => _byKey.ContainsKey(key) ? GetString(key) : null;

    /// <summary>Any integer type, in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public long GetInteger(string key, long min = long.MinValue, long max = long.MaxValue)
    {
        var v = Required(key, "an integer");
        if (!v.TryGetInteger(out long l)) throw Wrong(key, v, "an integer");
        if (l < min || l > max) throw Wrong(key, v, $"an integer in [{min}, {max}]");
        return l;
    }

    public long GetInteger(string key, long fallback, long min, long max) =>
        _byKey.ContainsKey(key) ? GetInteger(key, min, max) : fallback;

    /// <summary>A positive count (≤ int.MaxValue) of any integer type.</summary>
    public int GetCount(string key) => (int)GetInteger(key, 1, int.MaxValue);

    public int GetCount(string key, int fallback) => _byKey.ContainsKey(key) ? GetCount(key) : fallback;

    /// <summary>A float32/float64 or integer value, finite.</summary>
    public double GetNumber(string key)
    {
        var v = Required(key, "a number");
        if (!v.TryGetNumber(out double d) || !double.IsFinite(d)) throw Wrong(key, v, "a finite number");
        return d;
    }

    public double GetNumber(string key, double fallback) => _byKey.ContainsKey(key) ? GetNumber(key) : fallback;

    public bool GetBool(string key, bool fallback)
    {
        if (!_byKey.TryGetValue(key, out var v)) return fallback;
        return v.Value is bool b ? b : throw Wrong(key, v, "a bool");
    }

    /// <summary>An array whose items have type <paramref name="elementType"/>.</summary>
    public T[] GetArray<T>(string key, GgufValueType elementType)
    {
        var v = Required(key, $"an array of {elementType}");
        if (v.Value is not GgufArray a || a.ElementType != elementType)
            throw Wrong(key, v, $"an array of {elementType}");
        return (T[])a.Items;
    }

    /// <summary>An array of any integer item type as int32 values (each must fit).</summary>
    public int[] GetIntegerArray(string key)
    {
        var v = Required(key, "an array of integers");
        if (v.Value is not GgufArray a || a.ElementType.FixedSize() == 0 || a.ElementType is GgufValueType.Float32
            or GgufValueType.Float64 or GgufValueType.Bool)
            throw Wrong(key, v, "an array of integers");
        var result = new int[a.Length];
        for (int i = 0; i < result.Length; i++)
        {
            object item = a.Items.GetValue(i)!;
            bool huge = item is ulong ul && ul > long.MaxValue;
            long l = huge ? long.MaxValue : Convert.ToInt64(item, System.Globalization.CultureInfo.InvariantCulture);
            if (huge || l < int.MinValue || l > int.MaxValue)
                throw new GgufException(Source, $"metadata key '{key}'", $"item {i} is {l}, outside int32");
            result[i] = (int)l;
        }
        return result;
    }
}
