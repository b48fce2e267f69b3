using System.Diagnostics;
using System.Globalization;
using System.Text;
using NativeReasoner.RL;
using SkiaSharp;
using Xunit;
using Xunit.Abstractions;

namespace NativeReasoner.Tests.RL;

/// <summary>
/// The run charts are real PNGs of the stated size with something drawn on them (text and the series colours), and
/// report.html carries the summary tables and samples and renders to a non-blank page in headless Chromium.
/// </summary>
public class RunReportTests(ITestOutputHelper output)
{
    /// <summary>A small finished run: 12 GRPO steps (held-out eval every 4), pre-training rows, samples.</summary>
    private static string MakeRun()
    {
        var dir = Path.Combine(Path.GetTempPath(), "nr-report-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var m = new StringBuilder();
        for (int s = 1; s <= 5; s++) m.Append($"{{\"phase\": 0, \"step\": {s}, \"loss\": {5.0 / s}}}\n");
        for (int s = 1; s <= 12; s++)
        {
            string F(double v) => v.ToString(CultureInfo.InvariantCulture);
            m.Append($"{{\"phase\": 1, \"step\": {s}, \"reward\": {F(0.5 + 0.08 * s)}, \"rewards/accuracy/mean\": " +
                     $"{F(0.3 + 0.05 * s)}, \"rewards/format/mean\": {F(0.2 + 0.06 * s)}, " +
                     $"\"completions/mean_length\": {10 + s}");
            if (s % 4 == 0)
                m.Append($", \"eval/accuracy\": {F(0.5 + 0.1 * s / 4)}, \"eval/format\": 0.9, \"eval/think_rate\": " +
                         $"{F(0.2 * s / 4)}, \"eval/mean_length\": {20 + s}");
            m.Append("}\n");
        }
        File.WriteAllText(Path.Combine(dir, "metrics.jsonl"), m.ToString());
        string Level(double acc, double len) =>
            $"{{\"n\": 4, \"accuracy\": {acc.ToString(CultureInfo.InvariantCulture)}, \"format_rate\": 1, " +
            $"\"think_rate\": 0.5, \"mean_completion_length\": {len.ToString(CultureInfo.InvariantCulture)}}}";
        File.WriteAllText(Path.Combine(dir, "summary.json"), $$$"""
            {"task": "ladder", "model": {"HiddenSize": 32}, "pretrain_steps": 5, "rl_steps": 12, "rl_minutes": 0.5,
             "budget_hit": false,
             "budget": {"pretrain": {"planned_steps": 5, "steps": 5, "max_minutes": 60, "wall_limit_hit": false},
                        "rl": {"planned_steps": 12, "steps": 12, "max_minutes": 60, "wall_limit_hit": false}},
             "after_pretraining": {"accuracy": 0.4, "format_rate": 0, "think_rate": 0, "mean_completion_length": 11,
               "by_difficulty": {"1": {{{Level(0.75, 10)}}}, "2": {{{Level(0.25, 12)}}}},
               "thinking_tokens_by_difficulty": {"1": 0, "2": 0}},
             "after_rl": {"accuracy": 0.875, "format_rate": 1, "think_rate": 1, "mean_completion_length": 30,
               "by_difficulty": {"1": {{{Level(1, 20)}}}, "2": {{{Level(0.625, 40)}}}},
               "thinking_tokens_by_difficulty": {"1": 5.5, "2": 31.25}},
             "checks": {"format_ok": true, "hardest_accuracy_gain_ok": false},
             "timings": {"pretrain_s": 12.5, "total_s": 40}}
            """);
        File.WriteAllText(Path.Combine(dir, "samples.md"),
            "# samples\n\n## 3+4 (level 1, answer 7)\n\nafter pre-training:\n\n```\n<answer>8</answer>\n```\n\n" +
            "after GRPO:\n\n```\n<think>3+4=7</think><answer>7</answer>\n```\n");
        return dir;
    }

    /// <summary>Decodes a PNG: (width, height, share of non-white pixels, share in the first colour).</summary>
    private static (int W, int H, double Ink, double Blue) Inspect(byte[] png)
    {
        using var bitmap = SKBitmap.Decode(png) ?? throw new InvalidDataException("not a decodable PNG");
        int ink = 0, blue = 0;
        for (int y = 0; y < bitmap.Height; y++)
            for (int x = 0; x < bitmap.Width; x++)
            {
                var c = bitmap.GetPixel(x, y);
                if (c.Red < 235 || c.Green < 235 || c.Blue < 235) ink++;
                // Category10's first colour (31, 119, 180): the first series.
                if (Math.Abs(c.Red - 31) < 30 && Math.Abs(c.Green - 119) < 30 && Math.Abs(c.Blue - 180) < 30) blue++;
            }
        double n = bitmap.Width * (double)bitmap.Height;
        return (bitmap.Width, bitmap.Height, ink / n, blue / n);
    }

    [Fact]
    public void EveryChartIsAPngOfTheStatedSizeWithTextAndData()
    {
        var dir = MakeRun();
        try
        {
            RunReport.Write(dir);
            string[] expected =
            [
                "reward.png", "heldout_accuracy.png", "completion_length.png", "think_rate.png",
                "accuracy_by_difficulty.png", "length_by_difficulty.png", "think_rate_by_difficulty.png",
            ];
            foreach (var file in expected)
            {
                var bytes = File.ReadAllBytes(Path.Combine(dir, file));
                Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], bytes[..4]);
                var (w, h, ink, blue) = Inspect(bytes);
                output.WriteLine($"{file}: {w}x{h}, ink {ink:P1}, first-series colour {blue:P2}");
                Assert.Equal((Plots.Width, Plots.Height), (w, h));
                // Axes, labels and title alone cover a few percent; an empty or all-dark image fails either bound.
                Assert.InRange(ink, 0.01, 0.6);
                Assert.True(blue > 0.0005, $"{file}: the first series is not drawn");
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void ReportCarriesTheSummaryTablesChartsAndSamples()
    {
        var dir = MakeRun();
        try
        {
            var html = File.ReadAllText(RunReport.Write(dir));
            Assert.Contains("<img src=\"reward.png\"", html);
            Assert.Contains("<img src=\"accuracy_by_difficulty.png\"", html);
            Assert.Contains("<td>0.625</td>", html); // level 2 accuracy after GRPO
            Assert.Contains("<td>31.25</td>", html); // level 2 thinking tokens after GRPO
            Assert.Contains("&lt;think&gt;3+4=7&lt;/think&gt;", html); // samples, escaped
            Assert.Contains("<td class=bad>false</td>", html);
            Assert.Contains("pretrain (s)", html);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void ResumedStepsKeepTheirLastRowAndPreTrainingRowsAreLeftOut()
    {
        var dir = MakeRun();
        try
        {
            File.AppendAllText(Path.Combine(dir, "metrics.jsonl"), "{\"phase\": 1, \"step\": 3, \"reward\": 9}\n");
            var rows = RunReport.ReadGrpoRows(Path.Combine(dir, "metrics.jsonl"));
            Assert.Equal(12, rows.Count);
            Assert.Equal(Enumerable.Range(1, 12).Select(s => (double)s), rows.Select(r => r["step"]));
            Assert.Equal(9, rows[2]["reward"]);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void ADirectoryWithoutSummaryIsAClearError()
    {
        var dir = Path.Combine(Path.GetTempPath(), "nr-report-empty-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var e = Assert.Throws<FileNotFoundException>(() => RunReport.Write(dir));
            Assert.Contains("summary.json", e.Message);
            Assert.Throws<DirectoryNotFoundException>(() => RunReport.Write(dir + "-missing"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public async Task ReportRendersInHeadlessChromium()
    {
        var chromium = new[] { "chromium", "chromium-browser", "google-chrome" }
            .Select(n => (n, Path: Environment.GetEnvironmentVariable("PATH")!.Split(':')
                .Select(d => Path.Combine(d, n)).FirstOrDefault(File.Exists)))
            .FirstOrDefault(c => c.Path != null).Path;
        if (chromium == null)
        {
            output.WriteLine("skipped: no chromium on PATH (Debian: apt-get install chromium)");
            return;
        }
        var dir = MakeRun();
        try
        {
            var page = RunReport.Write(dir);
            var shot = Path.Combine(dir, "screenshot.png");
            var start = new ProcessStartInfo(chromium)
            {
                RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false,
            };
            foreach (var a in new[]
                     {
                         "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1600,2400",
                         "--user-data-dir=" + Path.Combine(dir, "profile"), "--screenshot=" + shot,
                         "file://" + page,
                     })
                start.ArgumentList.Add(a);
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(2));
            await process.WaitForExitAsync(limit.Token);
            await stdout;
            Assert.True(File.Exists(shot), "chromium wrote no screenshot: " + await stderr);
            var (w, h, ink, blue) = Inspect(File.ReadAllBytes(shot));
            output.WriteLine($"screenshot {w}x{h}, ink {ink:P1}, first-series colour {blue:P2}");
            Assert.True(ink > 0.03, "the rendered report is blank");
            Assert.True(blue > 0.001, "the rendered report shows no chart");
        }
        finally { Directory.Delete(dir, true); }
    }
}
