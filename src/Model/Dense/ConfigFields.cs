using System.Text.Json;

namespace NativeReasoner.Model.Dense;

/// <summary>
/// Typed reads of config.json fields with HF's defaults for absent (or null) ones; a value of the wrong kind is a
/// <see cref="ModelConfigException"/> naming the field (with its block prefix, e.g. "rope_scaling.factor").
/// </summary>
internal static class ConfigFields
{
    /// <summary>
    /// Parses config.json text: comments and trailing commas allowed, every string checked to be text (see
    /// <see cref="IO.StrictJson"/>). A key given twice is allowed and the last one counts, as with Python's json
    /// module, which is what transformers reads config.json with.
    /// </summary>
    public static JsonDocument Parse(string json)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, Options);
        }
        catch (JsonException e)
        {
            throw new ModelConfigException($"config: not valid JSON ({e.Message})", e);
        }
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
        {
            doc.Dispose();
            throw new ModelConfigException("config: the top level must be a JSON object");
        }
        if (IO.StrictJson.FindInvalidText(doc.RootElement) is { } bad)
        {
            doc.Dispose();
            throw new ModelConfigException($"config: {bad} is not text (an unpaired surrogate escape)");
        }
        return doc;
    }

    private static readonly JsonDocumentOptions Options = new()
    {
        CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true, MaxDepth = 64,
    };

    public static bool Present(JsonElement o, string name, out JsonElement e) =>
        o.TryGetProperty(name, out e) && e.ValueKind != JsonValueKind.Null;

    private static ModelConfigException Bad(string prefix, string name, JsonElement e, string expected) =>
        new($"config: {prefix}{name} must be {expected}, got {e.GetRawText()}");

    public static int Int(JsonElement o, string name, int dflt, string prefix = "")
    {
        if (!Present(o, name, out var e)) return dflt;
        if (e.ValueKind == JsonValueKind.Number)
        {
            if (e.TryGetInt32(out int i)) return i;
            if (e.TryGetDouble(out double d) && d == Math.Floor(d) && Math.Abs(d) <= int.MaxValue) return (int)d;
        }
        throw Bad(prefix, name, e, "an integer");
    }

    public static int? NullableInt(JsonElement o, string name, int? dflt, string prefix = "")
    {
        if (!o.TryGetProperty(name, out var e)) return dflt;
        return e.ValueKind == JsonValueKind.Null ? null : Int(o, name, 0, prefix);
    }

    public static double Dbl(JsonElement o, string name, double dflt, string prefix = "")
    {
        if (!Present(o, name, out var e)) return dflt;
        if (e.ValueKind == JsonValueKind.Number && e.TryGetDouble(out double v)) return v;
        throw Bad(prefix, name, e, "a number");
    }

    public static double? NullableDbl(JsonElement o, string name, string prefix = "") =>
        Present(o, name, out _) ? Dbl(o, name, 0, prefix) : null;

    public static bool Bool(JsonElement o, string name, bool dflt, string prefix = "")
    {
        if (!Present(o, name, out var e)) return dflt;
        return e.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Bad(prefix, name, e, "true or false"),
        };
    }

    public static string Str(JsonElement o, string name, string dflt, string prefix = "")
    {
        if (!Present(o, name, out var e)) return dflt;
        if (e.ValueKind == JsonValueKind.String) return e.GetString()!;
        throw Bad(prefix, name, e, "a string");
    }

    public static long? NullableLong(JsonElement o, string name, long? dflt)
    {
        if (!o.TryGetProperty(name, out var e)) return dflt;
        if (e.ValueKind == JsonValueKind.Null) return null;
        if (e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out long l)) return l;
        throw Bad("", name, e, "an integer or null");
    }

    /// <summary>HF allows eos_token_id to be an int or a list of ints.</summary>
    public static IReadOnlyList<long> LongList(JsonElement o, string name, IReadOnlyList<long> dflt)
    {
        if (!o.TryGetProperty(name, out var e)) return dflt;
        if (e.ValueKind == JsonValueKind.Null) return [];
        if (e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out long l)) return [l];
        if (e.ValueKind == JsonValueKind.Array)
        {
            var list = new List<long>();
            foreach (var x in e.EnumerateArray())
            {
                if (x.ValueKind != JsonValueKind.Number || !x.TryGetInt64(out long v))
                    throw Bad("", name, e, "an integer or a list of integers");
                list.Add(v);
            }
            return list;
        }
        throw Bad("", name, e, "an integer or a list of integers");
    }
}
