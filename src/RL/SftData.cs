// Source: TRL SFT datasets in prompt/completion form.
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

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
            JsonNode? node;
            try { node = JsonNode.Parse(line); }
            catch (JsonException e) { throw new InvalidDataException($"{path}:{lineNo}: malformed JSON: {e.Message}", e); }
            if (node is not JsonObject o) throw new InvalidDataException($"{path}:{lineNo}: expected a JSON object per line");
            string Str(string key, bool required)
            {
                var v = o[key];
                if (v == null) return required ? throw new InvalidDataException($"{path}:{lineNo}: missing \"{key}\"") : null!;
                try { return v.GetValue<string>(); }
                catch (InvalidOperationException) { throw new InvalidDataException($"{path}:{lineNo}: \"{key}\" must be a string"); }
            }
            int? difficulty = null;
            if (o["difficulty"] is JsonValue dv)
            {
                try { difficulty = dv.GetValue<int>(); }
                catch (Exception e) when (e is InvalidOperationException or FormatException) { throw new InvalidDataException($"{path}:{lineNo}: \"difficulty\" must be an integer"); }
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
