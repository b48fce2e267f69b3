using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using NativeReasoner.IO;

namespace NativeReasoner.RL;

/// <summary>
/// Redraws a finished <c>nr train</c> run's charts and writes its <c>report.html</c> from the files of its run
/// directory: metrics.jsonl (GRPO rows, phase 1), summary.json and samples.md. The page is self-contained next to the
/// charts (it links them as files beside it, no script, no outside resource), so the directory can be copied whole.
/// </summary>
public static class RunReport
{
    /// <summary>Writes the charts and report.html into <paramref name="runDir"/>; returns the page's path.</summary>
    public static string Write(string runDir)
    {
        if (!Directory.Exists(runDir)) throw new DirectoryNotFoundException($"run directory '{runDir}' does not exist");
        var summaryPath = Path.Combine(runDir, "summary.json");
        if (!File.Exists(summaryPath))
            throw new FileNotFoundException(
                $"'{runDir}' is not a finished run: expected {summaryPath} (written by nr train)");
        var summary = ReadSummary(summaryPath);
        var rl = ReadGrpoRows(Path.Combine(runDir, "metrics.jsonl"));
        var charts = Plots.WriteRunPlots(runDir, rl, summary);
        var samplesPath = Path.Combine(runDir, "samples.md");
        var samples = File.Exists(samplesPath) ? ParseSamples(File.ReadAllText(samplesPath)) : [];
        var page = Path.Combine(runDir, "report.html");
        var name = Path.GetFileName(Path.GetFullPath(runDir).TrimEnd('/'));
        File.WriteAllText(page, Html(name, summary, charts, samples));
        return page;
    }

    /// <summary>
    /// summary.json as nr train writes it: a JSON object whose blocks the report looks into (the evaluations, their
    /// levels, the budget's phases) are objects. Anything else is an <see cref="InvalidDataException"/> naming the
    /// file and the field.
    /// </summary>
    public static JsonObject ReadSummary(string path)
    {
        var text = File.ReadAllText(path);
        using (var doc = StrictJson.Parse(text, path))
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{path}: expected a JSON object, got " +
                                               doc.RootElement.ValueKind.ToString().ToLowerInvariant());
        var summary = JsonNode.Parse(text, documentOptions: StrictJson.DocumentOptions)!.AsObject();
        void Object(JsonNode? n, string field)
        {
            if (n != null && n is not JsonObject)
            {
                var got = n.ToJsonString();
                throw new InvalidDataException(
                    $"{path}: {field} must be an object, got {(got.Length <= 80 ? got : got[..80] + "…")}");
            }
        }
        void ObjectOfObjects(JsonNode? n, string field)
        {
            Object(n, field);
            if (n is JsonObject o)
                foreach (var (key, value) in o) Object(value, $"{field}.{key}");
        }
        foreach (var phase in new[] { "after_pretraining", "after_rl" })
        {
            Object(summary[phase], phase);
            if (summary[phase] is not JsonObject eval) continue;
            ObjectOfObjects(eval["by_difficulty"], phase + ".by_difficulty");
            Object(eval["thinking_tokens_by_difficulty"], phase + ".thinking_tokens_by_difficulty");
        }
        ObjectOfObjects(summary["budget"], "budget");
        return summary;
    }

    /// <summary>
    /// The GRPO rows of metrics.jsonl (phase 1; all rows when no row has a phase), in step order; a step logged twice
    /// (a run resumed from a checkpoint older than its last logged step) keeps its last row.
    /// </summary>
    public static IReadOnlyList<IReadOnlyDictionary<string, double>> ReadGrpoRows(string path)
    {
        if (!File.Exists(path)) return [];
        var rows = new List<Dictionary<string, double>>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            var row = new Dictionary<string, double>();
            using (var doc = StrictJson.Parse(line, $"{path} line {lineNo}"))
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                    throw new InvalidDataException($"{path} line {lineNo}: expected a JSON object, got " +
                                                   doc.RootElement.ValueKind.ToString().ToLowerInvariant());
                foreach (var p in doc.RootElement.EnumerateObject())
                {
                    // NaN and infinities are logged as strings.
                    if (p.Value.ValueKind == JsonValueKind.Number) row[p.Name] = p.Value.GetDouble();
                    else if (p.Value.ValueKind == JsonValueKind.String &&
                             double.TryParse(p.Value.GetString(), CultureInfo.InvariantCulture, out var v))
                        row[p.Name] = v;
                }
            }
            rows.Add(row);
        }
        bool phased = rows.Any(r => r.ContainsKey("phase"));
        return rows.Where(r => !phased || r.GetValueOrDefault("phase") == 1)
            .Select((r, i) => (Step: r.GetValueOrDefault("step", i + 1), Row: r))
            .GroupBy(r => r.Step).Select(g => g.Last())
            .OrderBy(r => r.Step).Select(r => (IReadOnlyDictionary<string, double>)r.Row).ToArray();
    }

    /// <summary>One held-out problem with its greedy completions before and after GRPO.</summary>
    public sealed record Sample(string Problem, string Before, string After);

    /// <summary>
    /// The problems of samples.md as TrainPipeline writes it: a "## problem" heading, then the fenced completion
    /// after pre-training and the one after GRPO. A section without two fences is skipped.
    /// </summary>
    public static IReadOnlyList<Sample> ParseSamples(string markdown)
    {
        var result = new List<Sample>();
        foreach (var section in markdown.Split("\n## ").Skip(1))
        {
            int headingEnd = section.IndexOf('\n');
            if (headingEnd < 0) continue;
            var fences = section[headingEnd..].Split("```");
            // Split on fences: the odd pieces are the fenced texts.
            if (fences.Length < 5) continue;
            result.Add(new Sample(section[..headingEnd].Trim(), fences[1].Trim('\n'), fences[3].Trim('\n')));
        }
        return result;
    }

    private static string Html(string name, JsonObject s, IReadOnlyList<Plots.Chart> charts,
        IReadOnlyList<Sample> samples)
    {
        var h = new StringBuilder();
        h.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
        h.Append($"<title>nr train: {E(name)}</title>\n<style>\n");
        h.Append("body{font-family:'DejaVu Sans',sans-serif;margin:24px auto;max-width:1500px;color:#222;");
        h.Append("background:#fff}\n");
        h.Append("table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:4px 10px;");
        h.Append("text-align:right}th{background:#eef2f7}td.l,th.l{text-align:left}\n");
        h.Append(".charts{display:flex;flex-wrap:wrap;gap:12px}.charts figure{margin:0}.charts img{width:720px;");
        h.Append("border:1px solid #ddd}\npre{background:#f6f6f6;padding:6px;margin:0;white-space:pre-wrap;");
        h.Append("font-size:12px;max-width:600px}\n.ok{color:#1a7f37}.bad{color:#b42318}\n</style></head><body>\n");
        h.Append($"<h1>nr train run <code>{E(name)}</code></h1>\n");

        h.Append("<h2>Overview</h2>\n<table>");
        Row(h, "task", Text(s["task"]));
        var model = s["model"] as JsonObject;
        Row(h, "model", model == null ? "" : string.Join(", ", model.Select(kv => $"{kv.Key} {Text(kv.Value)}")));
        Row(h, "pre-training steps", Text(s["pretrain_steps"]));
        Row(h, "GRPO steps", Text(s["rl_steps"]));
        Row(h, "GRPO minutes", Text(s["rl_minutes"]));
        Row(h, "wall-time budget hit", Text(s["budget_hit"]));
        h.Append("</table>\n");

        h.Append("<h2>Held-out results after pre-training and after GRPO</h2>\n");
        LevelTable(h, s["after_pretraining"] as JsonObject, s["after_rl"] as JsonObject);
        BehaviourTable(h, s["after_pretraining"]?["behaviour"] as JsonObject,
            s["after_rl"]?["behaviour"] as JsonObject);

        if (s["budget"] is JsonObject budget)
        {
            h.Append("<h2>Budget</h2>\n<table><tr><th class=l>phase</th><th>planned steps</th><th>steps run</th>");
            h.Append("<th>wall limit (min)</th><th>wall limit hit</th></tr>");
            foreach (var (phase, b) in budget)
                h.Append($"<tr><td class=l>{E(phase)}</td><td>{Text(b?["planned_steps"])}</td>" +
                         $"<td>{Text(b?["steps"])}</td><td>{Text(b?["max_minutes"])}</td>" +
                         $"<td>{Text(b?["wall_limit_hit"])}</td></tr>");
            h.Append("</table>\n");
        }
        if (s["checks"] is JsonObject checks)
        {
            h.Append("<h2>Checks</h2>\n<table>");
            foreach (var (k, v) in checks)
            {
                var cls = v?.GetValueKind() switch
                {
                    JsonValueKind.True => " class=ok",
                    JsonValueKind.False => " class=bad",
                    _ => "",
                };
                h.Append($"<tr><th class=l>{E(k)}</th><td{cls}>{Text(v)}</td></tr>");
            }
            h.Append("</table>\n");
        }
        if (s["timings"] is JsonObject timings)
        {
            h.Append("<h2>Timings</h2>\n<table>");
            foreach (var (k, v) in timings) Row(h, k.EndsWith("_s") ? k[..^2] + " (s)" : k, Text(v));
            h.Append("</table>\n");
        }

        h.Append("<h2>Charts</h2>\n<div class=charts>");
        foreach (var c in charts)
            h.Append($"<figure><img src=\"{E(c.File)}\" alt=\"{E(c.Caption)}\" width=\"{Plots.Width}\" " +
                     $"height=\"{Plots.Height}\"></figure>");
        h.Append("</div>\n");

        if (samples.Count > 0)
        {
            h.Append("<h2>Samples: the same held-out problems, greedy</h2>\n<table><tr><th class=l>problem</th>");
            h.Append("<th class=l>after pre-training</th><th class=l>after GRPO</th></tr>");
            foreach (var x in samples)
                h.Append($"<tr><td class=l>{E(x.Problem)}</td><td class=l><pre>{E(x.Before)}</pre></td>" +
                         $"<td class=l><pre>{E(x.After)}</pre></td></tr>\n");
            h.Append("</table>\n");
        }
        h.Append("</body></html>\n");
        return h.ToString();
    }

    /// <summary>One row per difficulty level: each measure before → after, plus the overall row.</summary>
    private static void LevelTable(StringBuilder h, JsonObject? before, JsonObject? after)
    {
        (string Field, string Header)[] cols =
        [
            ("accuracy", "accuracy"), ("format_rate", "format rate"), ("think_rate", "think rate"),
            ("mean_completion_length", "length (tokens)"),
        ];
        h.Append("<table><tr><th class=l>level</th><th>n</th>");
        foreach (var (_, header) in cols) h.Append($"<th>{E(header)}<br>before</th><th>{E(header)}<br>after</th>");
        h.Append("<th>thinking tokens<br>before</th><th>thinking tokens<br>after</th></tr>");
        var bb = before?["by_difficulty"] as JsonObject;
        var ab = after?["by_difficulty"] as JsonObject;
        var levels = (bb?.Select(kv => kv.Key) ?? []).Union(ab?.Select(kv => kv.Key) ?? [])
            .OrderBy(k => int.TryParse(k, out var l) ? l : int.MaxValue);
        foreach (var level in levels)
        {
            h.Append($"<tr><td class=l>{E(level)}</td><td>{Text(bb?[level]?["n"] ?? ab?[level]?["n"])}</td>");
            foreach (var (field, _) in cols)
                h.Append($"<td>{Text(bb?[level]?[field])}</td><td>{Text(ab?[level]?[field])}</td>");
            h.Append($"<td>{Text(before?["thinking_tokens_by_difficulty"]?[level])}</td>" +
                     $"<td>{Text(after?["thinking_tokens_by_difficulty"]?[level])}</td></tr>");
        }
        h.Append("<tr><th class=l>all</th><td></td>");
        foreach (var (field, _) in cols) h.Append($"<th>{Text(before?[field])}</th><th>{Text(after?[field])}</th>");
        h.Append("<td></td><td></td></tr></table>\n");
    }

    /// <summary>
    /// Behaviour of the held-out completions per level (and all together): thinking length of correct and
    /// incorrect completions, and the shares of traces that verify a step or correct themselves, before → after.
    /// </summary>
    private static void BehaviourTable(StringBuilder h, JsonObject? before, JsonObject? after)
    {
        if (before == null && after == null) return;
        (string Field, string Header)[] cols =
        [
            ("thinking", "thinking completions"), ("think_length_correct", "thinking tokens, correct"),
            ("think_length_incorrect", "thinking tokens, incorrect"), ("verification_rate", "verification rate"),
            ("self_correction_rate", "self-correction rate"),
        ];
        h.Append("<h2>Behaviour inside the traces (held-out, greedy)</h2>\n<table><tr><th class=l>level</th>");
        foreach (var (_, header) in cols) h.Append($"<th>{E(header)}<br>before</th><th>{E(header)}<br>after</th>");
        h.Append("</tr>");
        var levels = (before?.Select(kv => kv.Key) ?? []).Union(after?.Select(kv => kv.Key) ?? [])
            .OrderBy(k => k == "all" ? int.MaxValue : int.TryParse(k, out var l) ? l : int.MaxValue - 1);
        foreach (var level in levels)
        {
            h.Append($"<tr><td class=l>{E(level)}</td>");
            foreach (var (field, _) in cols)
                h.Append($"<td>{Text(before?[level]?[field])}</td><td>{Text(after?[level]?[field])}</td>");
            h.Append("</tr>");
        }
        h.Append("</table>\n");
    }

    private static void Row(StringBuilder h, string key, string value) =>
        h.Append($"<tr><th class=l>{E(key)}</th><td class=l>{value}</td></tr>");

    /// <summary>A JSON value as escaped text: numbers to at most 3 decimals, arrays joined, absent as a dash.</summary>
    private static string Text(JsonNode? v) => v switch
    {
        null => "–",
        JsonArray a => string.Join(", ", a.Select(Text)),
        JsonValue x when x.GetValueKind() == JsonValueKind.Number =>
            x.GetValue<double>().ToString("0.###", CultureInfo.InvariantCulture),
        JsonValue x when x.GetValueKind() == JsonValueKind.String => E(x.GetValue<string>()),
        _ => E(v.ToJsonString()),
    };

    private static string E(string s) => WebUtility.HtmlEncode(s);
}
