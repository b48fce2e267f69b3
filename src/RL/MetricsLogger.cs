// Source: TRL's per-step metric logging (one JSON object per step).
using System.Globalization;
using System.Text;

namespace NativeReasoner.RL;

/// <summary>
/// Appends one JSON object per training step to <c>metrics.jsonl</c>: <c>{"step": 3, "reward": 0.5, …}</c>,
/// keys in the order given, non-finite values as null. Flushed per line, so a killed run keeps its log.
/// </summary>
public sealed class MetricsLogger(string path) : IDisposable
{
    private readonly StreamWriter _writer = CreateWriter(path);

    public string Path { get; } = path;

    private static StreamWriter CreateWriter(string path)
    {
        var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
        if (dir != null) Directory.CreateDirectory(dir);
        return new StreamWriter(path, append: true, new UTF8Encoding(false)) { AutoFlush = true };
    }

    public void Log(IEnumerable<KeyValuePair<string, double>> metrics) => _writer.WriteLine(ToJson(metrics));

    public static string ToJson(IEnumerable<KeyValuePair<string, double>> metrics)
    {
        var sb = new StringBuilder("{");
        bool first = true;
        foreach (var (k, v) in metrics)
        {
            if (!first) sb.Append(", ");
            first = false;
            sb.Append(System.Text.Json.JsonSerializer.Serialize(k)).Append(": ");
            sb.Append(double.IsFinite(v) ? v.ToString("R", CultureInfo.InvariantCulture) : "null");
        }
        return sb.Append('}').ToString();
    }

    /// <summary>
    /// Aligns <paramref name="path"/> with a checkpoint taken after <paramref name="step"/> steps of phase
    /// <paramref name="phase"/>: keeps the lines of earlier phases and of this phase up to that step, drops the lines
    /// written after the checkpoint by the run that stopped (and a line torn by the stop), and rewrites the file
    /// atomically. Returns the kept lines as rows (null values as NaN). A missing file is an empty log.
    /// </summary>
    public static List<Dictionary<string, double>> KeepThrough(string path, int phase, int step,
        Action<string> progress)
    {
        var rows = new List<Dictionary<string, double>>();
        if (!File.Exists(path)) return rows;
        var kept = new StringBuilder();
        int dropped = 0, torn = 0;
        foreach (var line in File.ReadLines(path))
        {
            if (line.Length == 0) continue;
            Dictionary<string, double>? row = TryParse(line);
            if (row == null) { torn++; continue; }
            int linePhase = (int)row.GetValueOrDefault("phase", 0), lineStep = (int)row.GetValueOrDefault("step", 0);
            if (linePhase > phase || (linePhase == phase && lineStep > step)) { dropped++; continue; }
            rows.Add(row);
            kept.Append(line).Append('\n');
        }
        if (dropped + torn > 0)
            progress($"{System.IO.Path.GetFileName(path)}: dropped {dropped} line(s) after the checkpoint" +
                     (torn > 0 ? $" and {torn} torn line(s)" : "") + "; appending from there\n");
        AtomicFile.WriteAllText(path, kept.ToString());
        return rows;
    }

    private static Dictionary<string, double>? TryParse(string line)
    {
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(line);
            if (doc.RootElement.ValueKind != System.Text.Json.JsonValueKind.Object) return null;
            var row = new Dictionary<string, double>();
            foreach (var p in doc.RootElement.EnumerateObject())
                row[p.Name] = p.Value.ValueKind == System.Text.Json.JsonValueKind.Number
                    ? p.Value.GetDouble() : double.NaN;
            return row;
        }
        catch (System.Text.Json.JsonException) { return null; }
    }

    public void Dispose() => _writer.Dispose();
}
