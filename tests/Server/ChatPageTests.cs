using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Xunit;
using Xunit.Abstractions;

namespace NativeReasoner.Tests.Server;

/// <summary>
/// The chat page in headless Chromium, driven over the DevTools protocol: opened with <c>?q=</c> it sends the
/// question and streams the answer; the test waits until the stream's usage line appears, then checks that the
/// thinking sits in its own box apart from the answer, and takes a screenshot (<c>NR_SERVE_SCREENSHOT=path</c>
/// keeps it; docs/serve/chat.png was made so).
/// </summary>
public class ChatPageTests(ITestOutputHelper output)
{
    private static string? Chromium() => new[] { "chromium", "chromium-browser", "google-chrome" }
        .Select(n => Environment.GetEnvironmentVariable("PATH")!.Split(':').Select(d => Path.Combine(d, n))
            .FirstOrDefault(File.Exists))
        .FirstOrDefault(p => p != null);

    /// <summary>One DevTools page session: commands by id, answers matched by id (events are skipped).</summary>
    private sealed class DevTools(ClientWebSocket socket) : IDisposable
    {
        private int _id;

        public async Task<JsonElement> Call(string method, object parameters)
        {
            int id = ++_id;
            var message = JsonSerializer.SerializeToUtf8Bytes(new { id, method, @params = parameters });
            await socket.SendAsync(message, WebSocketMessageType.Text, true, CancellationToken.None);
            var buffer = new byte[1 << 16];
            while (true)
            {
                using var frame = new MemoryStream();
                WebSocketReceiveResult r;
                do
                {
                    r = await socket.ReceiveAsync(buffer, CancellationToken.None);
                    frame.Write(buffer, 0, r.Count);
                } while (!r.EndOfMessage);
                var root = JsonDocument.Parse(frame.ToArray()).RootElement;
                if (root.TryGetProperty("id", out var got) && got.GetInt32() == id)
                    return root.TryGetProperty("result", out var result) ? result
                        : throw new InvalidOperationException($"{method} failed: {root.GetRawText()}");
            }
        }

        public async Task<string> Evaluate(string expression) =>
            (await Call("Runtime.evaluate", new { expression, returnByValue = true }))
            .GetProperty("result").GetProperty("value").GetString() ?? "";

        public void Dispose() => socket.Dispose();
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
        var start = new ProcessStartInfo(chromium) { RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[]
                 {
                     "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1000,700",
                     "--user-data-dir=" + Path.Combine(work, "profile"), "--remote-debugging-port=0", page,
                 })
            start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        try
        {
            // Chromium prints "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID" once it is up.
            string? port = null;
            using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(1));
            while (port == null && await process.StandardError.ReadLineAsync(limit.Token) is { } line)
                port = Regex.Match(line, @"DevTools listening on ws://[^:]+:(\d+)/") is { Success: true } m
                    ? m.Groups[1].Value : null;
            Assert.NotNull(port);
            _ = process.StandardError.ReadToEndAsync(); // keep draining
            using var http = new HttpClient();
            var targets = JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{port}/json/list"))
                .RootElement.EnumerateArray().ToList();
            var target = targets.First(t => t.GetProperty("type").GetString() == "page");
            var socket = new ClientWebSocket();
            await socket.ConnectAsync(new Uri(target.GetProperty("webSocketDebuggerUrl").GetString()!),
                CancellationToken.None);
            using var tools = new DevTools(socket);

            // The usage line is written from the stream's last chunk: when it shows, the answer is complete.
            string meta = "";
            var waited = Stopwatch.StartNew();
            while (waited.Elapsed < TimeSpan.FromSeconds(60))
            {
                meta = await tools.Evaluate("(document.querySelector('.assistant .meta') || {}).textContent || ''");
                if (meta.Contains("generated")) break;
                await Task.Delay(100);
            }
            Assert.Contains("generated", meta);
            Assert.Equal(ServerHarness.Reasoning,
                await tools.Evaluate("document.querySelector('.thinking').textContent"));
            Assert.Equal(ServerHarness.Answer, await tools.Evaluate("document.querySelector('.answer').textContent"));
            Assert.Equal("What is 2 + 3?", await tools.Evaluate("document.querySelector('.user').textContent"));
            // The thinking box is drawn apart: its own background and italic text.
            Assert.Equal("italic", await tools.Evaluate(
                "getComputedStyle(document.querySelector('.thinking')).fontStyle"));

            var shot = await tools.Call("Page.captureScreenshot", new { format = "png" });
            var png = Convert.FromBase64String(shot.GetProperty("data").GetString()!);
            Assert.True(png.Length > 10_000, "the screenshot is nearly empty");
            if (Environment.GetEnvironmentVariable("NR_SERVE_SCREENSHOT") is { Length: > 0 } keep)
                await File.WriteAllBytesAsync(keep, png);
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            Directory.Delete(work, true);
        }
    }
}
