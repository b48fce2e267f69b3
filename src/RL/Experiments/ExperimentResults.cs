using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ScottPlot;

namespace NativeReasoner.RL.Experiments;

/// <summary>
/// Aggregates an experiment over its seeds from the files the runs wrote (each arm's <c>seed-S/summary.json</c> and
/// <c>metrics.jsonl</c>, each seed's <c>pretrained/evaluation.json</c>): mean ± sample standard deviation per arm
/// of greedy accuracy, pass@1 (overall and per level), the unseen level and the training log's end, into
/// <c>results.json</c>, charts with error bars, and <c>report.html</c>. Seeds not yet run are simply absent (each
/// row says how many seeds it averages).
/// </summary>
public static class ExperimentResults
{
    /// <summary>A mean over seeds with its sample standard deviation (NaN with a single seed) and count.</summary>
    public readonly record struct Stat(double Mean, double Std, int N)
    {
        public static Stat Of(IReadOnlyList<double> values)
        {
            var v = values.Where(double.IsFinite).ToArray();
            if (v.Length == 0) return new Stat(double.NaN, double.NaN, 0);
            double mean = v.Average();
            double std = v.Length < 2 ? double.NaN
                : Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Length - 1));
            return new Stat(mean, std, v.Length);
        }

        public JsonObject ToJson() => new() { ["mean"] = Num(Mean), ["std"] = Num(Std), ["n"] = N };

        /// <summary>As a percentage: <c>87.5 ± 2.1</c> (or <c>87.5</c> from one seed).</summary>
        public string Percent() => N == 0 ? "–"
            : double.IsFinite(Std) ? $"{100 * Mean:F1} ± {100 * Std:F1}" : $"{100 * Mean:F1}";

        public string Plain(string format) => N == 0 ? "–"
            : double.IsFinite(Std) ? $"{Mean.ToString(format, CultureInfo.InvariantCulture)} ± " +
                                     $"{Std.ToString(format, CultureInfo.InvariantCulture)}"
            : Mean.ToString(format, CultureInfo.InvariantCulture);
    }

    /// <summary>One row of the table: the pre-trained baseline, the teacher or an arm, over its seeds.</summary>
    public sealed record Row(string Name, string Description, IReadOnlyList<ulong> Seeds, Stat Greedy, Stat Pass1,
        IReadOnlyDictionary<int, Stat> Pass1ByLevel, Stat Unseen, Stat RolloutAccuracy, Stat RouterShift,
        Stat SampledSequences, Stat Updates, IReadOnlyList<string> MetricsFiles);

    public static JsonObject Write(ExperimentSettings s)
    {
        var rows = Rows(s);
        var results = new JsonObject
        {
            ["experiment"] = s.Experiment.Name, ["question"] = s.Experiment.Question, ["scale"] = s.Scale.Name,
            ["scale_settings"] = ExperimentRunner.ScaleJson(s.Scale),
            ["evaluation"] = $"greedy on {s.Scale.EvalProblems} held-out problems; pass@1 averaged over " +
                             $"{s.Scale.EvalSamples} samples at T {ExperimentRunner.EvalTemperature} / top-p " +
                             $"{ExperimentRunner.EvalTopP} on {s.Scale.SampledProblems}; greedy on " +
                             $"{s.Scale.UnseenProblems} problems of the unseen level 6",
            ["rows"] = new JsonArray(rows.Select(r => (JsonNode)RowJson(r)).ToArray()),
        };
        var charts = Charts(s.Directory, rows);
        AtomicFile.WriteAllText(Path.Combine(s.Directory, "results.json"),
            results.ToJsonString(TrainPipeline.SummaryJson));
        File.WriteAllText(Path.Combine(s.Directory, "report.html"), Html(s, rows, charts));
        File.WriteAllText(Path.Combine(s.Directory, "results.md"), Markdown(rows));
        return results;
    }

    /// <summary>The pre-trained baseline, the teacher (distill), then each arm, over the seeds that finished.</summary>
    public static IReadOnlyList<Row> Rows(ExperimentSettings s)
    {
        var rows = new List<Row>();
        var seeds = s.Seeds;
        var pretrained = seeds.Select(seed => (seed, Path.Combine(s.Directory, $"seed-{seed}", "pretrained",
            "evaluation.json"))).Where(x => File.Exists(x.Item2)).ToArray();
        rows.Add(FromEvaluations("pre-trained", "the shared starting point (no RL)", pretrained
            .Select(x => (x.seed, Json(x.Item2), (JsonObject?)null)).ToArray(), []));
        if (s.Experiment.NeedsTeacher)
        {
            var students = seeds.Select(seed => (seed, Path.Combine(s.Directory, $"seed-{seed}",
                "student-pretrained", "evaluation.json"))).Where(x => File.Exists(x.Item2)).ToArray();
            rows.Add(FromEvaluations("student pre-trained", "the dense qwen2 student before distillation or RL",
                students.Select(x => (x.seed, Json(x.Item2), (JsonObject?)null)).ToArray(), []));
            rows.Add(FromArm("teacher", "DeepSeek-V3 teacher: pre-trained policy after GRPO",
                seeds.Select(seed => (seed, Path.Combine(s.Directory, $"seed-{seed}", "teacher"))).ToArray()));
        }
        foreach (var arm in s.Experiment.Arms)
            rows.Add(FromArm(arm.Name, arm.Description,
                seeds.Select(seed => (seed, Path.Combine(s.Directory, arm.Name, $"seed-{seed}"))).ToArray()));
        return rows;
    }

    private static Row FromArm(string name, string description, IReadOnlyList<(ulong Seed, string Dir)> runs)
    {
        var done = runs.Where(r => File.Exists(Path.Combine(r.Dir, "summary.json"))).ToArray();
        var summaries = done.Select(r => (r.Seed, Json(Path.Combine(r.Dir, "summary.json")))).ToArray();
        return FromEvaluations(name, description,
            summaries.Select(x => (x.Seed, x.Item2["after"]!.AsObject(), (JsonObject?)x.Item2)).ToArray(),
            done.Select(r => Path.Combine(r.Dir, "metrics.jsonl")).Where(File.Exists).ToArray());
    }

    private static Row FromEvaluations(string name, string description,
        IReadOnlyList<(ulong Seed, JsonObject Evaluation, JsonObject? Summary)> runs, IReadOnlyList<string> metrics)
    {
        Stat Over(Func<JsonObject, JsonObject?, double> pick) =>
            Stat.Of(runs.Select(r => pick(r.Evaluation, r.Summary)).ToArray());
        var levels = runs.SelectMany(r => (r.Evaluation["sampled"]?["by_difficulty"] as JsonObject ?? [])
            .Select(kv => int.Parse(kv.Key, CultureInfo.InvariantCulture))).Distinct().Order().ToArray();
        return new Row(name, description, runs.Select(r => r.Seed).ToArray(),
            Over((e, _) => Number(e["greedy"]?["accuracy"])),
            Over((e, _) => Number(e["sampled"]?["pass@1"])),
            levels.ToDictionary(l => l, l => Over((e, _) =>
                Number(e["sampled"]?["by_difficulty"]?[l.ToString(CultureInfo.InvariantCulture)]?["pass@1"]))),
            Over((e, _) => Number(e["unseen_level_6"]?["accuracy"])),
            Over((_, sm) => Number(sm?["training"]?["rewards/accuracy/mean"])),
            Over((_, sm) => Number(sm?["training"]?["router_shift/mean"])),
            Over((_, sm) => Number(sm?["compute"]?["sampled_sequences"])),
            Over((_, sm) => Number(sm?["compute"]?["optimizer_updates"])),
            metrics);
    }

    private static JsonObject RowJson(Row r)
    {
        var byLevel = new JsonObject();
        foreach (var (level, stat) in r.Pass1ByLevel)
            byLevel[level.ToString(CultureInfo.InvariantCulture)] = stat.ToJson();
        return new JsonObject
        {
            ["name"] = r.Name, ["description"] = r.Description,
            ["seeds"] = new JsonArray(r.Seeds.Select(x => (JsonNode)x).ToArray()),
            ["greedy_accuracy"] = r.Greedy.ToJson(), ["pass@1"] = r.Pass1.ToJson(), ["pass@1_by_level"] = byLevel,
            ["unseen_level_6_accuracy"] = r.Unseen.ToJson(),
            ["rollout_accuracy_last_quarter"] = r.RolloutAccuracy.ToJson(),
            ["router_shift_last_quarter"] = r.RouterShift.ToJson(),
            ["sampled_sequences"] = r.SampledSequences.ToJson(), ["optimizer_updates"] = r.Updates.ToJson(),
        };
    }

    private static JsonObject Json(string path) =>
        JsonNode.Parse(File.ReadAllText(path)) as JsonObject
        ?? throw new InvalidDataException($"{path}: expected a JSON object");

    // summary.json writes NaN as the string "NaN".
    private static double Number(JsonNode? n) =>
        n is JsonValue v && v.GetValueKind() == JsonValueKind.Number ? v.GetValue<double>() : double.NaN;

    private static JsonNode? Num(double v) => double.IsFinite(v) ? JsonValue.Create(v) : null;

    // ---- charts

    private static IReadOnlyList<Plots.Chart> Charts(string dir, IReadOnlyList<Row> rows)
    {
        var charts = new List<Plots.Chart>();
        var shown = rows.Where(r => r.Pass1.N > 0).ToArray();
        if (shown.Length > 0)
        {
            File.WriteAllBytes(Path.Combine(dir, "accuracy.png"), BarsWithErrors(
                "Held-out accuracy per arm (mean ± std over seeds)", "accuracy (fraction correct)",
                shown.Select(r => r.Name).ToArray(),
                [("greedy", shown.Select(r => r.Greedy).ToArray()),
                 ("pass@1 (avg of K samples, T 0.6)", shown.Select(r => r.Pass1).ToArray()),
                 ("unseen level 6 (greedy)", shown.Select(r => r.Unseen).ToArray())]));
            charts.Add(new Plots.Chart("accuracy.png", "Held-out accuracy per arm"));
            var levels = shown.SelectMany(r => r.Pass1ByLevel.Keys).Distinct().Order().ToArray();
            File.WriteAllBytes(Path.Combine(dir, "pass1_by_level.png"), BarsWithErrors(
                "pass@1 by difficulty level (mean ± std over seeds)", "pass@1 (fraction correct)",
                levels.Select(l => $"level {l}").ToArray(),
                shown.Select(r => (r.Name, levels.Select(l => r.Pass1ByLevel.GetValueOrDefault(l)).ToArray()))
                    .ToArray()));
            charts.Add(new Plots.Chart("pass1_by_level.png", "pass@1 by level"));
        }
        void Curve(string file, string title, string yLabel, string key, double? yMax)
        {
            var series = rows.Where(r => r.MetricsFiles.Count > 0)
                .Select(r => (Legend: $"{r.Name} (n={r.MetricsFiles.Count})", Points: MeanCurve(r.MetricsFiles, key)))
                .Where(x => x.Points.X.Length > 0).ToArray();
            if (series.Length == 0) return;
            File.WriteAllBytes(Path.Combine(dir, file), Plots.LineChart(title, "training step", yLabel, series, yMax));
            charts.Add(new Plots.Chart(file, title));
        }
        Curve("heldout_curve.png", "Held-out accuracy during training (greedy, mean over seeds)",
            "accuracy (fraction correct)", "eval/accuracy", 1.05);
        Curve("rollout_accuracy.png", "Accuracy of the training samples (mean over seeds)",
            "fraction of samples correct", "rewards/accuracy/mean", 1.05);
        Curve("router_shift.png", "Router shift between rollout and update (mean over seeds)",
            "share of tokens whose expert set changed", "router_shift/mean", null);
        return charts;
    }

    /// <summary>Mean over the runs of <paramref name="key"/> at each step that every run that logged it has.</summary>
    private static (double[] X, double[] Y) MeanCurve(IReadOnlyList<string> files, string key)
    {
        var sums = new SortedDictionary<double, (double Sum, int N)>();
        foreach (var f in files)
            foreach (var line in File.ReadLines(f))
            {
                if (JsonNode.Parse(line) is not JsonObject o) continue;
                double step = Number(o["step"]), v = Number(o[key]);
                if (!double.IsFinite(step) || !double.IsFinite(v)) continue;
                var (sum, n) = sums.GetValueOrDefault(step);
                sums[step] = (sum + v, n + 1);
            }
        var kept = sums.Where(kv => kv.Value.N > 0).ToArray();
        return (kept.Select(kv => kv.Key).ToArray(), kept.Select(kv => kv.Value.Sum / kv.Value.N).ToArray());
    }

    /// <summary>Grouped bars (one group per category, one bar per series) with ±1 std error bars.</summary>
    private static byte[] BarsWithErrors(string title, string yLabel, IReadOnlyList<string> categories,
        IReadOnlyList<(string Legend, Stat[] Values)> series)
    {
        var plot = Plots.NewPlot(title, "", yLabel);
        var palette = new ScottPlot.Palettes.Category10();
        double groupWidth = 0.8, barWidth = groupWidth / series.Count;
        var bars = new List<Bar>();
        for (int si = 0; si < series.Count; si++)
            for (int c = 0; c < categories.Count; c++)
            {
                var v = series[si].Values[c];
                if (!double.IsFinite(v.Mean)) continue;
                bars.Add(new Bar
                {
                    Position = c - groupWidth / 2 + barWidth * (si + 0.5), Value = v.Mean, Size = barWidth * 0.92,
                    FillColor = palette.GetColor(si), Error = double.IsFinite(v.Std) ? v.Std : 0,
                    Label = v.Mean.ToString("0.00", CultureInfo.InvariantCulture),
                });
            }
        var plottable = plot.Add.Bars(bars);
        plottable.ValueLabelStyle.FontSize = 10;
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, categories.Count).Select(i => (double)i).ToArray(), categories.ToArray());
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        plot.Axes.SetLimits(-0.6, categories.Count - 0.4, 0, 1.35);
        plot.ShowLegend(
            series.Select((x, i) => new LegendItem { LabelText = x.Legend, FillColor = palette.GetColor(i) }),
            Alignment.UpperLeft);
        return Plots.Render(plot);
    }

    // ---- tables and page

    /// <summary>The table of docs/experiments.md: one row per arm, percentages as mean ± std over seeds.</summary>
    public static string Markdown(IReadOnlyList<Row> rows)
    {
        var levels = rows.SelectMany(r => r.Pass1ByLevel.Keys).Distinct().Order().ToArray();
        var sb = new StringBuilder("| arm | seeds | greedy % | pass@1 % | " +
            string.Concat(levels.Select(l => $"pass@1 L{l} % | ")) + "level 6 greedy % | rollout acc. % | " +
            "router shift % |\n");
        sb.Append("|---|---|---|---|" + string.Concat(levels.Select(_ => "---|")) + "---|---|---|\n");
        foreach (var r in rows)
            sb.Append($"| {r.Name} | {r.Seeds.Count} | {r.Greedy.Percent()} | {r.Pass1.Percent()} | " +
                      string.Concat(levels.Select(l => r.Pass1ByLevel.GetValueOrDefault(l).Percent() + " | ")) +
                      $"{r.Unseen.Percent()} | {r.RolloutAccuracy.Percent()} | {r.RouterShift.Percent()} |\n");
        return sb.ToString();
    }

    private static string Html(ExperimentSettings s, IReadOnlyList<Row> rows, IReadOnlyList<Plots.Chart> charts)
    {
        string E(string t) => WebUtility.HtmlEncode(t);
        var levels = rows.SelectMany(r => r.Pass1ByLevel.Keys).Distinct().Order().ToArray();
        var sb = new StringBuilder();
        sb.Append($"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>nr experiment " +
                  $"{E(s.Experiment.Name)}</title>\n<style>" +
                  "body{font-family:sans-serif;max-width:1100px;margin:2em auto}" +
                  "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}" +
                  "td:first-child,th:first-child{text-align:left}img{max-width:100%}</style></head><body>\n");
        sb.Append($"<h1>Experiment: {E(s.Experiment.Name)} (scale {E(s.Scale.Name)})</h1>\n");
        sb.Append($"<p>{E(s.Experiment.Question)}</p>\n");
        sb.Append("<p>Percentages: mean ± sample standard deviation over the seeds that finished. pass@1 is the " +
                  $"accuracy averaged over {s.Scale.EvalSamples} samples per problem at temperature " +
                  $"{ExperimentRunner.EvalTemperature}, top-p {ExperimentRunner.EvalTopP}.</p>\n" +
                  "<table><tr><th>arm</th>" +
                  "<th>seeds</th><th>greedy %</th><th>pass@1 %</th>" +
                  string.Concat(levels.Select(l => $"<th>L{l} %</th>")) +
                  "<th>level 6 %</th><th>rollout acc. %</th><th>router shift %</th><th>samples</th></tr>\n");
        foreach (var r in rows)
            sb.Append($"<tr><td title=\"{E(r.Description)}\">{E(r.Name)}</td><td>{r.Seeds.Count}</td>" +
                      $"<td>{r.Greedy.Percent()}</td><td>{r.Pass1.Percent()}</td>" +
                      string.Concat(levels.Select(l => $"<td>{r.Pass1ByLevel.GetValueOrDefault(l).Percent()}</td>")) +
                      $"<td>{r.Unseen.Percent()}</td><td>{r.RolloutAccuracy.Percent()}</td>" +
                      $"<td>{r.RouterShift.Percent()}</td><td>{r.SampledSequences.Plain("0")}</td></tr>\n");
        sb.Append("</table>\n<ul>\n");
        foreach (var r in rows) sb.Append($"<li><b>{E(r.Name)}</b>: {E(r.Description)}</li>\n");
        sb.Append("</ul>\n");
        foreach (var c in charts)
            sb.Append($"<figure><img src=\"{E(c.File)}\" alt=\"{E(c.Caption)}\"><figcaption>{E(c.Caption)}" +
                      "</figcaption></figure>\n");
        sb.Append("</body></html>\n");
        return sb.ToString();
    }
}
