using System.Globalization;
using System.Text;

namespace NativeReasoner.Cli;

/// <summary>
/// One flat JSON object on one line, fields in the given order (the JSON-lines output of `nr check` and
/// `nr-gpubench` (perf/gpu), read by perf/gpu/compare_table.py). Non-finite doubles become null, which JSON can carry.
/// </summary>
internal static class JsonLine
{
    public static string Object(params (string Key, object? Value)[] fields)
    {
        var sb = new StringBuilder("{");
        for (int i = 0; i < fields.Length; i++)
        {
            if (i > 0) sb.Append(", ");
            sb.Append(System.Text.Json.JsonSerializer.Serialize(fields[i].Key)).Append(": ");
            Append(sb, fields[i].Value);
        }
        return sb.Append('}').ToString();
    }

    private static void Append(StringBuilder sb, object? v)
    {
        switch (v)
        {
            case null: sb.Append("null"); break;
            case string s: sb.Append(System.Text.Json.JsonSerializer.Serialize(s)); break;
            case bool b: sb.Append(b ? "true" : "false"); break;
            case double d: sb.Append(Number(d)); break;
            case float f: sb.Append(Number(f)); break;
            case int or long: sb.Append(((IFormattable)v).ToString(null, CultureInfo.InvariantCulture)); break;
            case System.Collections.IEnumerable list:
                sb.Append('[');
                bool first = true;
                foreach (var item in list)
                {
                    if (!first) sb.Append(", ");
                    first = false;
                    Append(sb, item);
                }
                sb.Append(']');
                break;
            default: sb.Append(System.Text.Json.JsonSerializer.Serialize(v.ToString())); break;
        }
    }

    private static string Number(double d) => double.IsFinite(d) ? d.ToString("G7", CultureInfo.InvariantCulture) : "null";
}
