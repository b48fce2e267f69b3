using System.Diagnostics;
using Xunit;
using Xunit.Abstractions;

namespace NativeReasoner.Tests.Server;

/// <summary>
/// The chat page in headless Chromium: opened with <c>?q=</c> it sends the question, streams the answer and shows
/// the thinking in its own box; the DOM after the run holds both, and a screenshot is taken
/// (<c>NR_SERVE_SCREENSHOT=path</c> keeps it; docs/serve-chat.png was made so).
/// </summary>
public class ChatPageTests(ITestOutputHelper output)
{
    private static string? Chromium() => new[] { "chromium", "chromium-browser", "google-chrome" }
        .Select(n => Environment.GetEnvironmentVariable("PATH")!.Split(':').Select(d => Path.Combine(d, n))
            .FirstOrDefault(File.Exists))
        .FirstOrDefault(p => p != null);

    private static async Task<(string Stdout, string Stderr)> RunChromium(string chromium, string profile,
        params string[] args)
    {
        var start = new ProcessStartInfo(chromium)
        {
            RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false,
        };
        foreach (var a in new[]
                 {
                     "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1000,700",
                     "--user-data-dir=" + profile, "--virtual-time-budget=15000",
                 }.Concat(args))
            start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(limit.Token);
        return (await stdout, await stderr);
    }

    [Fact]
    public async Task ChatPage_StreamsTheAnswer_WithThinkingApart()
    {
        if (Chromium() is not { } chromium)
        {
            output.WriteLine("skipped: no chromium on PATH (Debian: apt-get install chromium)");
            return;
        }
        await using var server = await ServerHarness.StartAsync(ServerHarness.ScriptedClient(delayMs: 5));
        var page = new Uri(server.Url, "/?q=" + Uri.EscapeDataString("What is 2 + 3?")).ToString();
        var work = Path.Combine(Path.GetTempPath(), "nr-page-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(work);
        try
        {
            var (dom, domErr) = await RunChromium(chromium, Path.Combine(work, "p1"), "--dump-dom", page);
            output.WriteLine(dom.Length > 4000 ? dom[^4000..] : dom);
            Assert.True(dom.Contains("class=\"thinking\">" + ServerHarness.Reasoning + "</div>"),
                "no thinking box with the reasoning in the page: " + domErr);
            Assert.Contains("class=\"answer\">" + ServerHarness.Answer + "</div>", dom);
            Assert.Contains("generated", dom); // the usage line, from the stream's last chunk

            var shot = Environment.GetEnvironmentVariable("NR_SERVE_SCREENSHOT") is { Length: > 0 } keep ? keep
                : Path.Combine(work, "chat.png");
            var (_, shotErr) = await RunChromium(chromium, Path.Combine(work, "p2"), "--screenshot=" + shot, page);
            Assert.True(File.Exists(shot), "chromium wrote no screenshot: " + shotErr);
            Assert.True(new FileInfo(shot).Length > 10_000, "the screenshot is nearly empty");
        }
        finally { Directory.Delete(work, true); }
    }
}
