// Source: TRL SFT datasets in prompt/completion form.
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using NativeReasoner.IO;

namespace NativeReasoner.RL;

/// <summary>One supervised example: a plain question and the completion to learn (text after the prompt template).</summary>
public sealed record SftExample(string Prompt, string Completion, string? Answer = null, int? Difficulty = null);

/// <summary>
/// SFT data as JSONL, one object per line: <c>{"prompt": "What is 2 + 3?", "completion": "&lt;think&gt;…&lt;/think&gt; \boxed{5}",
/// "answer": "5", "difficulty": 1}</c> (answer and difficulty optional). Malformed lines are reported with
/// their line number.
/// </summary>
public static class SftData
{
    public static List<SftExample> ReadJsonl(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"SFT data file '{path}' does not exist", path);
        var result = new List<SftExample>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            using var doc = StrictJson.Parse(line, $"{path}:{lineNo}");
            var o = doc.RootElement;
            if (o.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{path}:{lineNo}: expected a JSON object per line");
            string Str(string key, bool required)
            {
                if (!o.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null)
                    return required ? throw new InvalidDataException($"{path}:{lineNo}: missing \"{key}\"") : null!;
                if (v.ValueKind != JsonValueKind.String)
                    throw new InvalidDataException(
                        $"{path}:{lineNo}: \"{key}\" must be a string, got {v.GetRawText()}");
                return v.GetString()!;
            }
            int? difficulty = null;
            if (o.TryGetProperty("difficulty", out var dv) && dv.ValueKind != JsonValueKind.Null)
            {
                if (dv.ValueKind != JsonValueKind.Number || !dv.TryGetInt32(out int d))
                    throw new InvalidDataException(
                        $"{path}:{lineNo}: \"difficulty\" must be an integer, got {dv.GetRawText()}");
                difficulty = d;
            }
            result.Add(new SftExample(Str("prompt", true), Str("completion", true), Str("answer", false), difficulty));
        }
        return result;
    }

    public static string ToJsonLine(SftExample e)
    {
        var o = new JsonObject { ["prompt"] = e.Prompt, ["completion"] = e.Completion };
        if (e.Answer != null) o["answer"] = e.Answer;
        if (e.Difficulty != null) o["difficulty"] = e.Difficulty;
        return o.ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
    }

    public static void WriteJsonl(string path, IEnumerable<SftExample> examples)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir != null) Directory.CreateDirectory(dir);
        using var w = new StreamWriter(path, false, new UTF8Encoding(false));
        foreach (var e in examples) w.WriteLine(ToJsonLine(e));
    }
}
