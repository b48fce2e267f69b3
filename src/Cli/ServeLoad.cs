using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using NativeReasoner.Model;
using NativeReasoner.RL;
using NativeReasoner.Server;

namespace NativeReasoner.Cli;

/// <summary>
/// Load on the OpenAI-compatible server over loopback HTTP, as streaming clients see it. Throughput runs: N
/// clients each send R greedy streamed requests one after another; tokens/s is the completion tokens (from each
/// stream's usage chunk) over the run's wall time, and time to first token is from sending a request to its first
/// chunk with text. Every answer to the same question must be the same text (greedy), whatever the load. The long
/// run: a fixed number of requests from many clients, a share of which leave after their first chunk; the server's
/// resident memory (its /metrics) is sampled every 100 requests, and every request must end completed or
/// cancelled with no slot left held.
/// </summary>
public static class ServeLoad
{
    public sealed record Settings(int[] Concurrency, int RequestsPerClient, int MaxTokens, int LongRequests,
        int LongClients, double HangUpShare)
    {
        public void Validate()
        {
            if (Concurrency.Length == 0) throw new ArgumentException("--concurrency needs at least one level");
            if (RequestsPerClient < 1)
                throw new ArgumentException($"--requests-per-client must be ≥ 1, got {RequestsPerClient}");
            if (MaxTokens < 1) throw new ArgumentException($"--max-tokens must be ≥ 1, got {MaxTokens}");
            if (LongRequests < 0) throw new ArgumentException($"--long-requests must be ≥ 0, got {LongRequests}");
            if (LongClients < 1) throw new ArgumentException($"--long-clients must be ≥ 1, got {LongClients}");
            if (HangUpShare is < 0 or > 1 || double.IsNaN(HangUpShare))
                throw new ArgumentException($"--hang-up must be in [0, 1], got {HangUpShare}");
        }
    }

    private const int Questions = 16;

    private sealed record Outcome(int Question, string? Text, int CompletionTokens, double TtftSeconds);

    /// <summary>A random model of a preset with the character tokenizer and the default prompt template.</summary>
    public static string WriteRandomModel(string preset)
    {
        var dir = Path.Combine(Path.GetTempPath(), "nr-serve-bench-" + Guid.NewGuid().ToString("N"));
        var tokenizer = new CharTokenizer();
        var config = ModelPresets.Get(preset).ForTokenizer(tokenizer.VocabSize, tokenizer.EosId, tokenizer.BosId,
            tokenizer.PadId);
        using var bundle = ModelBundle.Create(config.Build(new Generator(5)), tokenizer, PromptTemplate.Default);
        bundle.Save(dir);
        return dir;
    }

    private static string Question(int i) => $"What is {i} + {i * 7 % 10}?";

    public static async Task<string> RunAsync(IChatClient client, NativeReasonerServerOptions options,
        Settings settings, string modelLabel, TextWriter progress)
    {
        var app = NativeReasonerServer.Create(client, options, "127.0.0.1", 0);
        await app.StartAsync();
        try
        {
            var url = NativeReasonerServer.BoundUrl(app);
            using var http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromMinutes(30) };
            // A client that really closes the connection when it leaves a stream (no draining for reuse).
            using var leaving = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0 })
            {
                BaseAddress = url, Timeout = TimeSpan.FromMinutes(30),
            };
            var reference = new Dictionary<int, string>();
            int mismatches = 0;
            void Check(Outcome o)
            {
                if (o.Text == null) return;
                lock (reference)
                {
                    if (!reference.TryAdd(o.Question, o.Text) && reference[o.Question] != o.Text) mismatches++;
                }
            }

            // Warm-up: the JIT and the first prefill are not measured.
            Check(await RequestAsync(http, 0, settings.MaxTokens, leave: false));
            var sb = new StringBuilder();
            var c = CultureInfo.InvariantCulture;
            sb.Append(c, $"# nr serve under load — {modelLabel}\n\n");
            sb.Append(c, $"`nr bench serve` on {Environment.ProcessorCount} logical CPUs ({CpuName()}), ");
            sb.Append(c, $"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC. Loopback HTTP, streamed greedy requests, ");
            sb.Append(c, $"max_tokens {settings.MaxTokens}; server --max-concurrent " +
                         $"{options.MaxConcurrentSequences}; load average before the run {LoadAverage()}.\n\n");
            sb.Append("| clients | requests | wall s | completion tokens | tokens/s | requests/s | TTFT p50 ms | " +
                      "TTFT p99 ms |\n|---|---|---|---|---|---|---|---|\n");
            double? single = null;
            foreach (int clients in settings.Concurrency)
            {
                var clock = Stopwatch.StartNew();
                var outcomes = (await Task.WhenAll(Enumerable.Range(0, clients).Select(k => Task.Run(async () =>
                {
                    var list = new List<Outcome>();
                    for (int r = 0; r < settings.RequestsPerClient; r++)
                        list.Add(await RequestAsync(http, (k * settings.RequestsPerClient + r) % Questions,
                            settings.MaxTokens, leave: false));
                    return list;
                })))).SelectMany(x => x).ToList();
                double wall = clock.Elapsed.TotalSeconds;
                foreach (var o in outcomes) Check(o);
                long tokens = outcomes.Sum(o => (long)o.CompletionTokens);
                double tps = tokens / wall;
                single ??= tps;
                var ttft = outcomes.Select(o => o.TtftSeconds * 1000).OrderBy(x => x).ToArray();
                sb.Append(c, $"| {clients} | {outcomes.Count} | {wall:F1} | {tokens} | {tps:F1} | " +
                             $"{outcomes.Count / wall:F2} | {Percentile(ttft, 0.5):F0} | " +
                             $"{Percentile(ttft, 0.99):F0} |\n");
                progress.WriteLine($"concurrency {clients}: {tps:F1} tokens/s ({tps / single:F2}x concurrency " +
                                   $"{settings.Concurrency[0]}), TTFT p50 {Percentile(ttft, 0.5):F0} ms");
            }
            sb.Append(c, $"\nGreedy answers that differed from the first answer to the same question: {mismatches} " +
                         $"(of {reference.Count} questions).\n");

            if (settings.LongRequests > 0)
                await LongRunAsync(http, leaving, settings, sb, Check, progress);
            sb.Append(c, $"\nGreedy answers that differed, all runs: {mismatches}.\n");
            return sb.ToString();
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    private static async Task LongRunAsync(HttpClient http, HttpClient leaving, Settings settings, StringBuilder sb,
        Action<Outcome> check, TextWriter progress)
    {
        var c = CultureInfo.InvariantCulture;
        int next = -1, done = 0, left = 0;
        var rss = new List<(int Done, double MiB)> { (0, await ResidentMiB(http)) };
        var ttfts = new List<double>();
        long tokens = 0;
        var clock = Stopwatch.StartNew();
        int hangEvery = settings.HangUpShare <= 0 ? int.MaxValue : (int)Math.Round(1 / settings.HangUpShare);
        await Task.WhenAll(Enumerable.Range(0, settings.LongClients).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < settings.LongRequests)
            {
                bool leave = i % hangEvery == hangEvery - 1;
                var o = await RequestAsync(leave ? leaving : http, i % Questions, settings.MaxTokens, leave);
                check(o);
                int finished;
                lock (ttfts)
                {
                    ttfts.Add(o.TtftSeconds * 1000);
                    tokens += o.CompletionTokens;
                    if (leave) left++;
                    finished = ++done;
                }
                if (finished % 100 == 0)
                {
                    double mib = await ResidentMiB(http);
                    lock (rss) rss.Add((finished, mib));
                    progress.WriteLine($"long run: {finished} requests, resident {mib:F0} MiB");
                }
            }
        })));
        double wall = clock.Elapsed.TotalSeconds;
        // Wait for the server to notice the last hang-ups and free their slots.
        string metrics = "";
        for (int t = 0; t < 100; t++)
        {
            metrics = await http.GetStringAsync("/metrics");
            if (Metric(metrics, "nativereasoner_running_sequences") == 0) break;
            await Task.Delay(100);
        }
        var sorted = ttfts.OrderBy(x => x).ToArray();
        rss.Sort((a, b) => a.Done.CompareTo(b.Done));
        sb.Append(c, $"\n## Long run: {settings.LongRequests} requests from {settings.LongClients} clients, " +
                     $"{left} of them leaving after the first chunk\n\n");
        sb.Append(c, $"Wall {wall:F1} s, {tokens} completion tokens ({tokens / wall:F1} tokens/s), TTFT p50 " +
                     $"{Percentile(sorted, 0.5):F0} ms, p99 {Percentile(sorted, 0.99):F0} ms. Server afterwards: " +
                     $"{Metric(metrics, "nativereasoner_requests_total{outcome=\"completed\"}")} completed, " +
                     $"{Metric(metrics, "nativereasoner_requests_total{outcome=\"cancelled\"}")} cancelled, " +
                     $"{Metric(metrics, "nativereasoner_requests_total{outcome=\"failed\"}")} failed " +
                     $"(counts of the whole session), " +
                     $"{Metric(metrics, "nativereasoner_running_sequences")} running, " +
                     $"{Metric(metrics, "nativereasoner_queue_depth")} queued.\n\n");
        sb.Append("Resident memory of the server process (MiB) after N requests:\n\n| N | MiB |\n|---|---|\n");
        foreach (var (n, mib) in rss) sb.Append(c, $"| {n} | {mib:F0} |\n");
        if (rss.Count > 2)
        {
            var afterWarm = rss.Where(r => r.Done >= 100).ToList();
            sb.Append(c, $"\nFrom {afterWarm[0].Done} to {afterWarm[^1].Done} requests: " +
                         $"{afterWarm[^1].MiB - afterWarm[0].MiB:+0;-0} MiB " +
                         $"(min {afterWarm.Min(r => r.MiB):F0}, max {afterWarm.Max(r => r.MiB):F0}).\n");
        }
    }

    /// <summary>One streamed request; with <paramref name="leave"/> the client hangs up after the first text.</summary>
    private static async Task<Outcome> RequestAsync(HttpClient http, int question, int maxTokens, bool leave)
    {
        var body = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["messages"] = new[]
            {
                new Dictionary<string, string> { ["role"] = "user", ["content"] = Question(question) },
            },
            ["stream"] = true,
            ["stream_options"] = new Dictionary<string, bool> { ["include_usage"] = true },
            ["temperature"] = 0,
            ["max_tokens"] = maxTokens,
        });
        var clock = Stopwatch.StartNew();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent(body, Encoding.UTF8, "application/json"),
        };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        if (response.StatusCode != HttpStatusCode.OK)
            throw new InvalidOperationException(
                $"the server answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var text = new StringBuilder();
        double ttft = double.NaN;
        int tokens = 0;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.Length == 0) continue;
            if (line == "data: [DONE]")
                return new Outcome(question, text.ToString(), tokens, double.IsNaN(ttft) ? clock.Elapsed.TotalSeconds
                    : ttft);
            var chunk = JsonDocument.Parse(line["data: ".Length..]).RootElement;
            if (chunk.TryGetProperty("error", out var error))
                throw new InvalidOperationException("the stream failed: " + error.GetRawText());
            if (chunk.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
                tokens = usage.GetProperty("completion_tokens").GetInt32();
            var choices = chunk.GetProperty("choices");
            if (choices.GetArrayLength() == 0) continue;
            var delta = choices[0].GetProperty("delta");
            foreach (var field in new[] { "reasoning_content", "content" })
                if (delta.TryGetProperty(field, out var piece) && piece.GetString() is { Length: > 0 } s)
                {
                    if (double.IsNaN(ttft)) ttft = clock.Elapsed.TotalSeconds;
                    text.Append(s);
                }
            // Leaving: disposing the unread response closes the connection.
            if (leave && text.Length > 0) return new Outcome(question, null, 0, ttft);
        }
        throw new InvalidDataException("the stream ended without data: [DONE]");
    }

    private static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];

    private static double Metric(string metrics, string name)
    {
        foreach (var line in metrics.Split('\n'))
            if (line.StartsWith(name + " ", StringComparison.Ordinal))
                return double.Parse(line[(name.Length + 1)..], CultureInfo.InvariantCulture);
        return double.NaN;
    }

    private static async Task<double> ResidentMiB(HttpClient http) =>
        Metric(await http.GetStringAsync("/metrics"), "process_resident_memory_bytes") / (1024.0 * 1024);

    private static string LoadAverage()
    {
        try
        {
            return File.ReadAllText("/proc/loadavg").Split(' ')[0];
        }
        catch (IOException) { return "unknown"; }
    }

    private static string CpuName()
    {
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name"));
            return line?.Split(':', 2)[1].Trim() ?? "unknown CPU";
        }
        catch (IOException) { return "unknown CPU"; }
    }
}
