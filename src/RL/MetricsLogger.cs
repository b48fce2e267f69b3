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

    public void Dispose() => _writer.Dispose();
}
