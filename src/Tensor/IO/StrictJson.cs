using System.Text.Json;

namespace NativeReasoner.IO;

/// <summary>
/// Rules for JSON read from files a user hands the engine, beyond what the parser checks. A key given twice is an
/// error (System.Text.Json keeps both, and a later lookup would either pick one silently or throw an
/// ArgumentException far from the file). An escaped unpaired surrogate (<c>"\ud800"</c>) is valid JSON but not text:
/// System.Text.Json only fails when the string is read, with an InvalidOperationException that names nothing, so
/// <see cref="FindInvalidText"/> finds it up front for an error that names the file and the field.
/// </summary>
public static class StrictJson
{
    /// <summary>Comments and trailing commas refused, duplicate keys refused, nesting limited to 64.</summary>
    public static JsonDocumentOptions DocumentOptions { get; } = new()
    {
        AllowDuplicateProperties = false, MaxDepth = 64,
    };

    /// <summary>As <see cref="DocumentOptions"/>, but with comments and trailing commas allowed (config.json files
    /// written by hand).</summary>
    public static JsonDocumentOptions LenientDocumentOptions { get; } = new()
    {
        AllowDuplicateProperties = false, MaxDepth = 64, CommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    /// <summary>
    /// Parses <paramref name="json"/> under these rules; anything wrong is an <see cref="InvalidDataException"/> that
    /// starts with <paramref name="where"/> (the file, and the line for JSONL).
    /// </summary>
    public static JsonDocument Parse(string json, string where, bool lenient = false)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, lenient ? LenientDocumentOptions : DocumentOptions);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{where}: not valid JSON ({e.Message})", e);
        }
        catch (InvalidOperationException e)
        {
            // The duplicate-key check reads the keys, and a key with a lone surrogate fails it so.
            throw new InvalidDataException($"{where}: a key is not text: it holds an unpaired surrogate escape " +
                                           "(\\ud800-\\udfff without its pair)", e);
        }
        if (FindInvalidText(doc.RootElement) is { } bad)
        {
            doc.Dispose();
            throw new InvalidDataException($"{where}: {bad} is not text: it holds an unpaired surrogate escape " +
                                           "(\\ud800-\\udfff without its pair)");
        }
        return doc;
    }

    /// <summary>
    /// The path (<c>a.b[2]</c>, <c>(key of a.b)</c>) of the first string or key in <paramref name="root"/> that holds
    /// an unpaired surrogate, or null when every one is text.
    /// </summary>
    public static string? FindInvalidText(JsonElement root) => Find(root, "");

    private static string? Find(JsonElement e, string at)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.String:
                return IsText(e) ? null : (at.Length == 0 ? "(the value)" : at);
            case JsonValueKind.Array:
                int i = 0;
                foreach (var item in e.EnumerateArray())
                    if (Find(item, $"{at}[{i++}]") is { } bad) return bad;
                return null;
            case JsonValueKind.Object:
                foreach (var p in e.EnumerateObject())
                {
                    string name;
                    try { name = p.Name; }
                    catch (InvalidOperationException)
                    {
                        return $"(a key of {(at.Length == 0 ? "the top level" : at)})";
                    }
                    if (Find(p.Value, at.Length == 0 ? name : $"{at}.{name}") is { } bad) return bad;
                }
                return null;
            default:
                return null;
        }
    }

    private static bool IsText(JsonElement s)
    {
        try
        {
            _ = s.GetString();
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }
}
