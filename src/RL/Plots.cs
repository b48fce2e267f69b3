// Source: ScottPlot 5 charts of TRL-style training metrics.
using System.Text.Json.Nodes;
using ScottPlot;

namespace NativeReasoner.RL;

/// <summary>
/// The charts of a <c>nr train</c> run directory, drawn with ScottPlot 5: line charts of a metric against the GRPO
/// step and grouped bar charts by difficulty level (after pre-training vs after GRPO), each with a title, axis labels
/// with units and a legend. They are drawn from the run's files (metrics.jsonl rows and summary.json), so
/// <c>nr report</c> can redraw them for any finished run.
/// </summary>
public static class Plots
{
    public const int Width = 720, Height = 420;

    /// <summary>Skia on Linux is used without fontconfig, so the text font is loaded from its file.</summary>
    private const string FontName = "DejaVu Sans";

    private static readonly string[] FontFiles =
    [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
    ];

    private static readonly Lock FontLock = new();
    private static bool fontLoaded;

    /// <summary>One written chart: its file name in the run directory and what it shows.</summary>
    public sealed record Chart(string File, string Caption);

    /// <summary>
    /// Writes every chart of a run into <paramref name="runDir"/>. <paramref name="rl"/> are the GRPO rows of
    /// metrics.jsonl in step order; <paramref name="summary"/> is summary.json (its after_pretraining and after_rl
    /// evaluations). A chart whose data the run does not have (no held-out evals during GRPO) is left out.
    /// </summary>
    public static IReadOnlyList<Chart> WriteRunPlots(string runDir,
        IReadOnlyList<IReadOnlyDictionary<string, double>> rl, JsonObject summary)
    {
        var charts = new List<Chart>();
        void Line(string file, string title, string yLabel, (string Key, string Legend)[] series, double? yMax = null)
        {
            if (!series.Any(s => rl.Any(r => r.ContainsKey(s.Key)))) return;
            var png = LineChart(title, "GRPO step", yLabel,
                series.Select(s => (s.Legend, Points(rl, s.Key))).ToArray(), yMax);
            File.WriteAllBytes(Path.Combine(runDir, file), png);
            charts.Add(new Chart(file, title));
        }
        Line("reward.png", "Training reward per GRPO step", "mean reward per completion",
            [("reward", "total reward"), ("rewards/accuracy/mean", "accuracy reward"),
             ("rewards/format/mean", "format reward")]);
        Line("heldout_accuracy.png", "Held-out accuracy during GRPO (greedy)", "accuracy (fraction correct)",
            [("eval/accuracy", "held-out accuracy")], 1.05);
        Line("completion_length.png", "Completion length during GRPO", "tokens per completion",
            [("completions/mean_length", "training samples (mean)"), ("eval/mean_length", "held-out (mean, greedy)")]);
        Line("think_rate.png", "Thinking and format on held-out problems", "fraction of completions",
            [("eval/think_rate", "with <think> block"), ("eval/format", "well-formatted")], 1.05);

        Line("behaviour_think_length.png", "Thinking length of correct vs incorrect completions",
            "tokens inside <think> (mean)",
            [("eval/behaviour/think_length_correct", "held-out, correct"),
             ("eval/behaviour/think_length_incorrect", "held-out, incorrect"),
             ("behaviour/think_length_correct", "rollouts, correct"),
             ("behaviour/think_length_incorrect", "rollouts, incorrect")]);
        Line("behaviour_rates.png", "Verification and self-correction inside the trace",
            "fraction of thinking completions",
            [("eval/behaviour/verification_rate", "held-out, verifies a step"),
             ("eval/behaviour/self_correction_rate", "held-out, corrects itself"),
             ("behaviour/verification_rate", "rollouts, verifies a step"),
             ("behaviour/self_correction_rate", "rollouts, corrects itself")], 1.05);
        var evalLevels = rl.SelectMany(r => r.Keys)
            .Where(k => k.StartsWith("eval/behaviour/think_length_", StringComparison.Ordinal) && k.Contains("/level_"))
            .Select(k => int.Parse(k[(k.LastIndexOf('_') + 1)..], System.Globalization.CultureInfo.InvariantCulture))
            .Distinct().Order().ToArray();
        Line("behaviour_think_length_by_level.png", "Thinking length by level during GRPO (held-out, greedy)",
            "tokens inside <think> (mean)",
            evalLevels.SelectMany(l => new[]
            {
                ($"eval/behaviour/think_length_correct/level_{l}", $"level {l}, correct"),
                ($"eval/behaviour/think_length_incorrect/level_{l}", $"level {l}, incorrect"),
            }).ToArray());

        var before = summary["after_pretraining"]?["by_difficulty"] as JsonObject;
        var after = summary["after_rl"]?["by_difficulty"] as JsonObject;
        if (before != null && after != null)
        {
            var levels = before.Select(kv => kv.Key).Union(after.Select(kv => kv.Key))
                .OrderBy(k => int.TryParse(k, out var l) ? l : int.MaxValue).ToArray();
            double[] Values(JsonObject by, string field) =>
                levels.Select(l => by[l]?[field] is JsonNode v ? ReadNumber(v) : double.NaN).ToArray();
            void Bars(string file, string title, string yLabel, string field, double? yMax = null)
            {
                var png = BarChart(title, "difficulty level", yLabel, levels.Select(l => "level " + l).ToArray(),
                    [("after pre-training", Values(before, field)), ("after GRPO", Values(after, field))], yMax);
                File.WriteAllBytes(Path.Combine(runDir, file), png);
                charts.Add(new Chart(file, title));
            }
            Bars("accuracy_by_difficulty.png", "Held-out accuracy by difficulty", "accuracy (fraction correct)",
                "accuracy", 1.3);
            Bars("length_by_difficulty.png", "Completion length by difficulty", "tokens per completion (mean)",
                "mean_completion_length");
            Bars("think_rate_by_difficulty.png", "Thinking by difficulty", "fraction with <think> block",
                "think_rate", 1.3);
        }
        var behaviourBefore = summary["after_pretraining"]?["behaviour"] as JsonObject;
        var behaviourAfter = summary["after_rl"]?["behaviour"] as JsonObject;
        if (behaviourBefore != null && behaviourAfter != null)
        {
            var levels = behaviourBefore.Select(kv => kv.Key).Union(behaviourAfter.Select(kv => kv.Key))
                .Where(k => k != "all").OrderBy(k => int.TryParse(k, out var l) ? l : int.MaxValue).ToArray();
            double[] Values(JsonObject by, string field) =>
                levels.Select(l => by[l]?[field] is JsonNode v ? ReadNumber(v) : double.NaN).ToArray();
            (string Legend, double[] Values)[] series =
            [
                ("correct, after pre-training", Values(behaviourBefore, "think_length_correct")),
                ("incorrect, after pre-training", Values(behaviourBefore, "think_length_incorrect")),
                ("correct, after GRPO", Values(behaviourAfter, "think_length_correct")),
                ("incorrect, after GRPO", Values(behaviourAfter, "think_length_incorrect")),
            ];
            // A run where no completion thinks has no bar to draw: no chart rather than an empty one.
            if (series.SelectMany(x => x.Values).Any(double.IsFinite))
            {
                var png = BarChart("Thinking length of correct vs incorrect completions by level",
                    "difficulty level", "tokens inside <think> (mean)", levels.Select(l => "level " + l).ToArray(),
                    series);
                File.WriteAllBytes(Path.Combine(runDir, "behaviour_by_difficulty.png"), png);
                charts.Add(new Chart("behaviour_by_difficulty.png",
                    "Thinking length of correct vs incorrect by level"));
            }
        }
        return charts;
    }

    /// <summary>(step, value) of the rows that have <paramref name="key"/> with a finite value.</summary>
    private static (double[] X, double[] Y) Points(IReadOnlyList<IReadOnlyDictionary<string, double>> rows, string key)
    {
        var kept = rows.Where(r => r.TryGetValue(key, out var v) && double.IsFinite(v)).ToArray();
        return (kept.Select((r, i) => r.TryGetValue("step", out var s) ? s : i + 1).ToArray(),
                kept.Select(r => r[key]).ToArray());
    }

    /// <summary>A number of summary.json, where a missing level was written as the string "NaN".</summary>
    private static double ReadNumber(JsonNode v) =>
        v.GetValueKind() == System.Text.Json.JsonValueKind.Number ? v.GetValue<double>() : double.NaN;

    /// <summary>Lines of each series against x (a series of one point is drawn as a marker).</summary>
    public static byte[] LineChart(string title, string xLabel, string yLabel,
        IReadOnlyList<(string Legend, (double[] X, double[] Y) Points)> series, double? yMax = null)
    {
        var plot = NewPlot(title, xLabel, yLabel);
        for (int i = 0; i < series.Count; i++)
        {
            var (legend, (x, y)) = series[i];
            if (x.Length == 0) continue;
            var line = plot.Add.Scatter(x, y);
            line.LegendText = legend;
            // Later series are thinner, so one lying on another (think rate = format rate) leaves its edges visible.
            line.LineWidth = i == 0 ? 3.5f : 1.5f;
            line.MarkerSize = x.Length <= 40 ? 5 : 0;
        }
        plot.Axes.AutoScale();
        if (yMax is { } top) plot.Axes.SetLimitsY(0, top);
        plot.ShowLegend(Alignment.LowerRight);
        return Render(plot);
    }

    /// <summary>Groups of bars, one group per category and one bar (with its value on top) per series.</summary>
    public static byte[] BarChart(string title, string xLabel, string yLabel, IReadOnlyList<string> categories,
        IReadOnlyList<(string Legend, double[] Values)> series, double? yMax = null)
    {
        var plot = NewPlot(title, xLabel, yLabel);
        var palette = new ScottPlot.Palettes.Category10();
        double groupWidth = 0.8, barWidth = groupWidth / series.Count;
        var bars = new List<Bar>();
        for (int s = 0; s < series.Count; s++)
            for (int c = 0; c < categories.Count; c++)
            {
                double v = series[s].Values[c];
                if (!double.IsFinite(v)) continue;
                bars.Add(new Bar
                {
                    Position = c - groupWidth / 2 + barWidth * (s + 0.5), Value = v, Size = barWidth * 0.92,
                    FillColor = palette.GetColor(s), Label = v.ToString(v >= 10 ? "0" : "0.00"),
                });
            }
        var plottable = plot.Add.Bars(bars);
        plottable.ValueLabelStyle.FontSize = 11;
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, categories.Count).Select(i => (double)i).ToArray(), categories.ToArray());
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        // Room above the tallest bar for its value label and the legend.
        double tallest = series.SelectMany(s => s.Values).Where(double.IsFinite).DefaultIfEmpty(1).Max();
        double top = yMax ?? Math.Max(1, tallest * 1.3);
        plot.Axes.SetLimits(-0.6, categories.Count - 0.4, 0, top);
        var legend = series.Select((s, i) => new LegendItem { LabelText = s.Legend, FillColor = palette.GetColor(i) });
        plot.ShowLegend(legend, Alignment.UpperLeft);
        return Render(plot);
    }

    internal static Plot NewPlot(string title, string xLabel, string yLabel)
    {
        EnsureFont();
        var plot = new Plot();
        plot.Font.Set(FontName);
        plot.Title(title, 16);
        plot.XLabel(xLabel, 13);
        plot.YLabel(yLabel, 13);
        plot.Grid.MajorLineColor = Colors.Black.WithAlpha(0.1);
        return plot;
    }

    internal static byte[] Render(Plot plot)
    {
        using var image = plot.GetImage(Width, Height);
        return image.GetImageBytes(ImageFormat.Png);
    }

    /// <summary>Registers the text font once; without one every label would be silently missing.</summary>
    private static void EnsureFont()
    {
        lock (FontLock)
        {
            if (fontLoaded) return;
            var file = FontFiles.FirstOrDefault(File.Exists) ?? throw new FileNotFoundException(
                "plots need the DejaVu Sans font for their text; expected one of " + string.Join(", ", FontFiles) +
                " (Debian: apt-get install fonts-dejavu-core)");
            Fonts.AddFontFile(FontName, file);
            fontLoaded = true;
        }
    }
}
