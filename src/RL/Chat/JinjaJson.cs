using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace NativeReasoner.RL.Chat;

/// <summary>
/// JSON in and out of templates. <see cref="Serialize"/> is HF's <c>tojson</c>: Python's
/// <c>json.dumps(x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)</c>
/// (", " and ": " separators without indent, "," and ": " with it; non-ASCII kept; no HTML escaping).
/// <see cref="FromJson"/> turns conversation JSON into template values (integers stay integers).
/// </summary>
public static class JinjaJson
{
    public static string Serialize(object? value, int? indent = null, string? itemSeparator = null,
        string? keySeparator = null, bool sortKeys = false)
    {
        var sb = new StringBuilder();
        Write(sb, value, indent, itemSeparator ?? (indent == null ? ", " : ","), keySeparator ?? ": ", sortKeys, 0);
        return sb.ToString();
    }

    private static void Write(StringBuilder sb, object? v, int? indent, string itemSep, string keySep, bool sortKeys,
        int depth)
    {
        switch (v)
        {
            case null: sb.Append("null"); return;
            case bool b: sb.Append(b ? "true" : "false"); return;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); return;
            case double d:
                sb.Append(double.IsNaN(d) ? "NaN" : double.IsPositiveInfinity(d) ? "Infinity"
                    : double.IsNegativeInfinity(d) ? "-Infinity" : JinjaValue.FloatRepr(d));
                return;
            case string s: WriteString(sb, s); return;
            case IList<object?> list:
                WriteContainer(sb, '[', ']', list.Count, indent, itemSep, depth,
                    i => Write(sb, list[i], indent, itemSep, keySep, sortKeys, depth + 1));
                return;
            case OrderedDictionary<object, object?> dict:
                var pairs = dict.ToList();
                if (sortKeys) pairs.Sort((a, b) => JinjaValue.Compare(a.Key, b.Key));
                WriteContainer(sb, '{', '}', pairs.Count, indent, itemSep, depth, i =>
                {
                    var key = pairs[i].Key;
                    WriteString(sb, key switch
                    {
                        string s => s,
                        bool b => b ? "true" : "false",
                        long or double => JinjaValue.Repr(key),
                        _ => throw new JinjaError(
                            $"tojson: keys must be str, int, float or bool, not {JinjaValue.TypeName(key)}"),
                    });
                    sb.Append(keySep);
                    Write(sb, pairs[i].Value, indent, itemSep, keySep, sortKeys, depth + 1);
                });
                return;
            case JinjaUndefined u:
                throw new JinjaError(
                $"tojson: {u.Hint} is undefined (Object of type Undefined is not JSON serializable)");
            default: throw new JinjaError($"tojson: Object of type {JinjaValue.TypeName(v)} is not JSON serializable");
        }
    }

    private static void WriteContainer(StringBuilder sb, char open, char close, int count, int? indent, string itemSep,
        int depth, Action<int> writeItem)
    {
        sb.Append(open);
        if (count == 0) { sb.Append(close); return; }
        for (int i = 0; i < count; i++)
        {
            if (i > 0) sb.Append(itemSep);
            if (indent != null) sb.Append('\n').Append(' ', indent.Value * (depth + 1));
            writeItem(i);
        }
        if (indent != null) sb.Append('\n').Append(' ', indent.Value * depth);
        sb.Append(close);
    }

    private static void WriteString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }

    /// <summary>Parses JSON text into template values.</summary>
    public static object? Parse(string json) => FromJson(JsonNode.Parse(json));

    /// <summary>A JSON node as a template value: objects keep their key order; integral numbers become int.</summary>
    public static object? FromJson(JsonNode? node)
    {
        switch (node)
        {
            case null: return null;
            case JsonObject o:
                var d = JinjaValue.NewDict();
                foreach (var kv in o) d[kv.Key] = FromJson(kv.Value);
                return d;
            case JsonArray a: return a.Select(FromJson).ToList();
            case JsonValue v:
                switch (v.GetValueKind())
                {
                    case JsonValueKind.String: return v.GetValue<string>();
                    case JsonValueKind.True: return true;
                    case JsonValueKind.False: return false;
                    case JsonValueKind.Null: return null;
                    case JsonValueKind.Number:
                        var raw = v.ToJsonString();
                        return long.TryParse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture,
                            out var l)
                            ? (object)l : double.Parse(raw, CultureInfo.InvariantCulture);
                    default: throw new ArgumentException($"unsupported JSON value {v.ToJsonString()}");
                }
            default: throw new ArgumentException($"unsupported JSON node {node.GetType().Name}");
        }
    }
}
