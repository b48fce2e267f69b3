using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using NativeReasoner.Server;
using NativeReasoner.Serving;
using NativeReasoner.Tests.Cli;
using Xunit;

namespace NativeReasoner.Tests.Server;

/// <summary>
/// The server over the batching scheduler (the tiny DeepSeek-V3 chat directory): a second turn of a conversation
/// reports its cached prefix in the HTTP usage, and /metrics reads the scheduler's stats (slots, running
/// sequences, cached prompt tokens, its time to first token) — or the admission gate's figures for a client
/// that offers no stats.
/// </summary>
public class BatchedServerTests
{
    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private static async Task<JsonElement> ChatAsync(ServerHarness server, string messages)
    {
        var response = await server.Http.PostAsync("/v1/chat/completions", Json(
            $$"""{"messages": {{messages}}, "max_tokens": 6, "temperature": 0}"""));
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        return JsonDocument.Parse(body).RootElement;
    }

    private static long Metric(string metrics, string name)
    {
        var line = metrics.Split('\n').Single(l => l.StartsWith(name + " ", StringComparison.Ordinal));
        return long.Parse(line[(name.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task SecondTurn_ReportsCachedTokens_AndMetricsReadTheScheduler()
    {
        var dir = ChatCommandTests.ChatModelDir();
        try
        {
            var client = NativeReasonerChatClient.Load(dir,
                new NativeReasonerChatClientOptions { MaxConcurrentSequences = 3 });
            await using var server = await ServerHarness.StartAsync(client,
                new NativeReasonerServerOptions { MaxConcurrentSequences = 3 });

            var before = await server.Http.GetStringAsync("/metrics");
            Assert.Contains("nativereasoner_sequence_slots 3\n", before);
            Assert.Contains("nativereasoner_scheduler_time_to_first_token_seconds{quantile=\"0.5\"} NaN\n", before);

            var first = await ChatAsync(server, """[{"role": "user", "content": "What is 2 + 3?"}]""");
            var firstUsage = first.GetProperty("usage");
            Assert.Equal(0, firstUsage.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
            string answer = first.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;

            var second = await ChatAsync(server, $$"""
                [{"role": "user", "content": "What is 2 + 3?"},
                 {"role": "assistant", "content": {{JsonSerializer.Serialize(answer)}}},
                 {"role": "user", "content": "And 3 + 4?"}]
                """);
            var usage = second.GetProperty("usage");
            int cached = usage.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32();
            int prompt = usage.GetProperty("prompt_tokens").GetInt32();
            // The first turn's prompt is a prefix of the second's; the last prompt token is always recomputed.
            Assert.InRange(cached, firstUsage.GetProperty("prompt_tokens").GetInt32() / 2, prompt - 1);

            var metrics = await server.Http.GetStringAsync("/metrics");
            Assert.Equal(cached, Metric(metrics, "nativereasoner_cached_prompt_tokens_total"));
            Assert.Equal(0, Metric(metrics, "nativereasoner_running_sequences"));
            Assert.Equal(0, Metric(metrics, "nativereasoner_queue_depth"));
            Assert.Equal(2, Metric(metrics, "nativereasoner_scheduler_time_to_first_token_seconds_count"));
            Assert.True(Metric(metrics, "nativereasoner_decode_steps_total") > 0, metrics);
            Assert.DoesNotContain("quantile=\"0.99\"} NaN", metrics);
            Assert.Equal(2, Metric(metrics, "nativereasoner_requests_total{outcome=\"completed\"}"));
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>A chat client that hides the scheduler's stats, as another provider's client would.</summary>
    private sealed class WithoutStats(IChatClient inner) : DelegatingChatClient(inner)
    {
        public override object? GetService(Type serviceType, object? serviceKey = null) =>
            serviceType == typeof(ChatSchedulerStats) ? null : base.GetService(serviceType, serviceKey);
    }

    [Fact]
    public async Task ClientWithoutStats_MetricsComeFromTheHttpLayer()
    {
        await using var server = await ServerHarness.StartAsync(new WithoutStats(ServerHarness.ScriptedClient()));
        var response = await server.Http.PostAsync("/v1/chat/completions",
            Json("""{"messages": [{"role": "user", "content": "hi"}]}"""));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var metrics = await server.Http.GetStringAsync("/metrics");
        Assert.Equal(0, Metric(metrics, "nativereasoner_running_sequences"));
        Assert.Equal(1, Metric(metrics, "nativereasoner_time_to_first_token_seconds_count"));
        Assert.DoesNotContain("nativereasoner_sequence_slots", metrics);
        Assert.DoesNotContain("nativereasoner_scheduler_time_to_first_token_seconds", metrics);
    }
}
