using System.Text.Json;

namespace NativeReasoner.Server;

/// <summary>
/// Typed reads of a request's JSON fields. A field that is absent or JSON null reads as null (OpenAI clients send
/// null for unset options); a field of the wrong type or out of range throws a 400 that names its path.
/// </summary>
internal static class JsonFields
{
    public static JsonElement? Get(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    public static string Path(string parent, string name) => parent.Length == 0 ? name : parent + "." + name;

    public static string? String(JsonElement obj, string name, string parent = "")
    {
        if (Get(obj, name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.String) throw Wrong(Path(parent, name), "a string", v);
        return v.GetString();
    }

    public static bool? Bool(JsonElement obj, string name, string parent = "")
    {
        if (Get(obj, name) is not { } v) return null;
        if (v.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
            throw Wrong(Path(parent, name), "true or false", v);
        return v.GetBoolean();
    }

    public static double? Number(JsonElement obj, string name, double min, double max, string parent = "")
    {
        if (Get(obj, name) is not { } v) return null;
        string path = Path(parent, name);
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out var x)) throw Wrong(path, "a number", v);
        if (!(x >= min && x <= max)) throw OpenAIRequestException.BadField(path, $"must be in [{min}, {max}], got {x}");
        return x;
    }

    public static long? Integer(JsonElement obj, string name, long min, long max, string parent = "")
    {
        if (Get(obj, name) is not { } v) return null;
        string path = Path(parent, name);
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out var x)) throw Wrong(path, "an integer", v);
        if (x < min || x > max) throw OpenAIRequestException.BadField(path, $"must be in [{min}, {max}], got {x}");
        return x;
    }

    public static JsonElement? Object(JsonElement obj, string name, string parent = "")
    {
        if (Get(obj, name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Object) throw Wrong(Path(parent, name), "an object", v);
        return v;
    }

    public static JsonElement? Array(JsonElement obj, string name, string parent = "")
    {
        if (Get(obj, name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Array) throw Wrong(Path(parent, name), "an array", v);
        return v;
    }

    public static string RequiredString(JsonElement obj, string name, string parent = "") =>
        String(obj, name, parent) ?? throw OpenAIRequestException.BadField(Path(parent, name), "is required");

    public static OpenAIRequestException Wrong(string path, string expected, JsonElement got)
    {
        var raw = got.GetRawText();
        if (raw.Length > 40) raw = raw[..37] + "...";
        var kind = got.ValueKind.ToString().ToLowerInvariant();
        return OpenAIRequestException.BadField(path, $"must be {expected}, got {kind} {raw}");
    }

    /// <summary>The request body as JSON; malformed JSON or a body that is no object is a 400.</summary>
    public static async Task<JsonDocument> ReadBodyAsync(Stream body, CancellationToken cancel)
    {
        JsonDocument doc;
        try
        {
            doc = await JsonDocument.ParseAsync(body, default, cancel).ConfigureAwait(false);
        }
        catch (JsonException e)
        {
            throw new OpenAIRequestException(400,
                $"the request body is not valid JSON: {e.Message}", null, code: "invalid_json");
        }
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
        {
            var kind = doc.RootElement.ValueKind;
            doc.Dispose();
            throw new OpenAIRequestException(400,
                $"the request body must be a JSON object, got {kind.ToString().ToLowerInvariant()}", null,
                code: "invalid_json");
        }
        return doc;
    }
}
