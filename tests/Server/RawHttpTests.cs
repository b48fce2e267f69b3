using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using NativeReasoner.Server;
using Xunit;

namespace NativeReasoner.Tests.Server;

/// <summary>
/// The wire format and the refusals: <c>curl -N</c> on the raw event stream, text completions, models, health and
/// metrics, and every bad request answered with an OpenAI error object that names the field — malformed JSON,
/// wrong types, missing or out-of-range fields, n &gt; 1, an over-long prompt, a missing or wrong API key, a full
/// queue (429 with Retry-After).
/// </summary>
public class RawHttpTests
{
    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private static async Task<(HttpStatusCode Status, JsonElement Error, HttpResponseMessage Response)> Post(
        ServerHarness server, string path, string body, string? key = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = Json(body) };
        if (key != null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        var response = await server.Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        var root = JsonDocument.Parse(text).RootElement;
        return (response.StatusCode, root.TryGetProperty("error", out var e) ? e : default, response);
    }

    private static async Task AssertBadField(ServerHarness server, string body, string param, string messagePart,
        string path = "/v1/chat/completions", HttpStatusCode status = HttpStatusCode.BadRequest)
    {
        var (code, error, _) = await Post(server, path, body);
        Assert.Equal(status, code);
        Assert.Equal(JsonValueKind.Object, error.ValueKind);
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.Contains(messagePart, error.GetProperty("message").GetString());
        Assert.False(string.IsNullOrEmpty(error.GetProperty("type").GetString()));
    }

    [Fact]
    public async Task Curl_SeesTheEventStream_WithReasoningDeltas_UsageChunk_AndDone()
    {
        await using var server = await ServerHarness.StartAsync(ServerHarness.ScriptedClient());
        var start = new ProcessStartInfo("curl")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in new[]
                 {
                     "-N", "-sS", "--max-time", "60", "-H", "Content-Type: application/json", "-d",
                     """{"messages": [{"role": "user", "content": "What is 2 + 3?"}], "stream": true,""" +
                     """ "stream_options": {"include_usage": true}}""",
                     new Uri(server.Url, "v1/chat/completions").ToString(),
                 })
            start.ArgumentList.Add(a);
        using var curl = Process.Start(start)!;
        var output = await curl.StandardOutput.ReadToEndAsync();
        await curl.WaitForExitAsync();
        Assert.True(curl.ExitCode == 0, "curl failed: " + await curl.StandardError.ReadToEndAsync());

        var events = output.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.All(events, e => Assert.StartsWith("data: ", e));
        Assert.Equal("data: [DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonDocument.Parse(e["data: ".Length..]).RootElement).ToList();
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        Assert.Single(chunks.Select(c => c.GetProperty("id").GetString()).Distinct());
        Assert.Equal("assistant", chunks[0].GetProperty("choices")[0].GetProperty("delta").GetProperty("role")
            .GetString());
        string Delta(string field) => string.Concat(chunks.Where(c => c.GetProperty("choices").GetArrayLength() > 0)
            .Select(c => c.GetProperty("choices")[0].GetProperty("delta"))
            .Select(d => d.TryGetProperty(field, out var v) ? v.GetString() : ""));
        Assert.Equal(ServerHarness.Reasoning, Delta("reasoning_content"));
        Assert.Equal(ServerHarness.Answer, Delta("content"));
        // The finish chunk, then the usage chunk with no choices.
        Assert.Equal("stop", chunks[^2].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(0, chunks[^1].GetProperty("choices").GetArrayLength());
        var usage = chunks[^1].GetProperty("usage");
        Assert.True(usage.GetProperty("completion_tokens_details").GetProperty("reasoning_tokens").GetInt32() > 0);
        Assert.Equal(0, usage.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
    }

    [Fact]
    public async Task Completions_Models_Health_Metrics()
    {
        await using var server = await ServerHarness.StartAsync(ServerHarness.ScriptedClient());
        var response = await server.Http.PostAsync("/v1/completions",
            Json("""{"model": "scripted", "prompt": "What is 2 + 3?", "max_tokens": 100}"""));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var root = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("text_completion", root.GetProperty("object").GetString());
        var choice = root.GetProperty("choices")[0];
        Assert.Equal(ServerHarness.Answer, choice.GetProperty("text").GetString());
        Assert.Equal(ServerHarness.Reasoning, choice.GetProperty("reasoning_content").GetString());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());

        var streamed = await server.Http.PostAsync("/v1/completions",
            Json("""{"prompt": ["What is 2 + 3?"], "stream": true}"""));
        var events = (await streamed.Content.ReadAsStringAsync()).Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("data: [DONE]", events[^1]);
        Assert.Equal(ServerHarness.Answer, string.Concat(events[..^1].Select(e => JsonDocument.Parse(e[6..])
            .RootElement.GetProperty("choices")[0].GetProperty("text").GetString())));

        var models = JsonDocument.Parse(await server.Http.GetStringAsync("/v1/models")).RootElement;
        Assert.Equal("list", models.GetProperty("object").GetString());
        Assert.Equal("scripted", models.GetProperty("data")[0].GetProperty("id").GetString());
        var health = JsonDocument.Parse(await server.Http.GetStringAsync("/health")).RootElement;
        Assert.Equal("ok", health.GetProperty("status").GetString());

        var metrics = await server.Http.GetStringAsync("/metrics");
        Assert.Contains("# TYPE nativereasoner_queue_depth gauge", metrics);
        Assert.Contains("nativereasoner_running_sequences 0\n", metrics);
        Assert.Contains("nativereasoner_requests_total{outcome=\"completed\"} 2\n", metrics);
        Assert.Contains("nativereasoner_time_to_first_token_seconds_count 2\n", metrics);
        int generated = 2 * (new NativeReasoner.RL.CharTokenizer().Encode(ServerHarness.ScriptedOutput).Length + 1);
        Assert.Contains($"nativereasoner_generated_tokens_total {generated}\n", metrics);
        Assert.Contains("nativereasoner_tokens_per_second ", metrics);
    }

    [Fact]
    public async Task BadRequests_Get400_NamingTheField()
    {
        await using var server = await ServerHarness.StartAsync(ServerHarness.ScriptedClient(contextLength: 200));
        const string user = """[{"role": "user", "content": "hi"}]""";
        var (code, error, _) = await Post(server, "/v1/chat/completions", """{"messages": [{"role": "user",""");
        Assert.Equal(HttpStatusCode.BadRequest, code);
        Assert.Contains("not valid JSON", error.GetProperty("message").GetString());
        var (notObject, notObjectError, _) = await Post(server, "/v1/chat/completions", "[1, 2]");
        Assert.Equal(HttpStatusCode.BadRequest, notObject);
        Assert.Contains("must be a JSON object", notObjectError.GetProperty("message").GetString());
        await AssertBadField(server, "{}", "messages", "is required");
        await AssertBadField(server, """{"messages": []}""", "messages", "at least one");
        await AssertBadField(server, """{"messages": "hi"}""", "messages", "must be an array");
        await AssertBadField(server, """{"messages": [{"content": "hi"}]}""", "messages[0].role", "is required");
        await AssertBadField(server, """{"messages": [{"role": "robot", "content": "hi"}]}""", "messages[0].role",
            "must be one of");
        await AssertBadField(server, """{"messages": [{"role": "user", "content": 7}]}""", "messages[0].content",
            "must be a string or an array of parts");
        await AssertBadField(server,
            """{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}""",
            "messages[0].content[0].type", "only text parts");
        await AssertBadField(server, $$"""{"messages": {{user}}, "temperature": "hot"}""", "temperature",
            "must be a number");
        await AssertBadField(server, $$"""{"messages": {{user}}, "temperature": 3}""", "temperature", "[0, 2]");
        await AssertBadField(server, $$"""{"messages": {{user}}, "top_p": 0}""", "top_p", "(0, 1]");
        await AssertBadField(server, $$"""{"messages": {{user}}, "max_tokens": 1.5}""", "max_tokens",
            "must be an integer");
        await AssertBadField(server, $$"""{"messages": {{user}}, "max_tokens": 5000}""", "max_tokens",
            "at most 1024");
        await AssertBadField(server, $$"""{"messages": {{user}}, "max_completion_tokens": 0}""",
            "max_completion_tokens", "[1, ");
        await AssertBadField(server, $$"""{"messages": {{user}}, "n": 2}""", "n", "only n = 1");
        await AssertBadField(server, $$"""{"messages": {{user}}, "stream": "yes"}""", "stream", "true or false");
        await AssertBadField(server, $$"""{"messages": {{user}}, "stop": [1]}""", "stop[0]", "non-empty string");
        await AssertBadField(server, $$$"""{"messages": {{{user}}}, "stream_options": {"include_usage": 1}}""",
            "stream_options.include_usage", "true or false");
        await AssertBadField(server, $$"""{"messages": {{user}}, "reasoning_effort": "extreme"}""",
            "reasoning_effort", "must be one of");
        await AssertBadField(server, $$"""{"messages": {{user}}, "tools": [{"type": "function"}]}""",
            "tools[0].function", "is required");
        await AssertBadField(server, $$"""{"messages": {{user}}, "tool_choice": "sometimes"}""", "tool_choice",
            "must be none");
        await AssertBadField(server,
            """{"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f",""" +
            """ "arguments": "[1]"}}]}]}""", "messages[0].tool_calls[0].function.arguments", "JSON object");
        await AssertBadField(server, $$"""{"messages": {{user}}, "model": "gpt-4o"}""", "model", "serves 'scripted'",
            status: HttpStatusCode.NotFound);
        await AssertBadField(server, """{"prompt": 5}""", "prompt", "a string or an array of one string",
            "/v1/completions");
        await AssertBadField(server, """{"prompt": "hi", "echo": true}""", "echo", "not supported", "/v1/completions");
        // Over-long: the scripted client's context is 200 positions (one character token each).
        var longText = new string('a', 300);
        await AssertBadField(server, $$"""{"messages": [{"role": "user", "content": "{{longText}}"}]}""", "messages",
            "fills the model's context");
        await AssertBadField(server, $$"""{"prompt": "{{longText}}"}""", "prompt", "fills the model's context",
            "/v1/completions");

        // Unknown fields are ignored; the server still answers.
        var ok = await server.Http.PostAsync("/v1/chat/completions",
            Json($$"""{"messages": {{user}}, "user": "someone", "presence_penalty": 0, "logprobs": false}"""));
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        var metrics = await server.Http.GetStringAsync("/metrics");
        Assert.Contains("nativereasoner_requests_total{outcome=\"completed\"} 1\n", metrics);
    }

    [Fact]
    public async Task ApiKey_Required_On_V1_Only()
    {
        await using var server = await ServerHarness.StartAsync(ServerHarness.ScriptedClient(),
            new NativeReasonerServerOptions { ApiKey = "sesame" });
        const string body = """{"messages": [{"role": "user", "content": "What is 2 + 3?"}]}""";
        var (missing, error, _) = await Post(server, "/v1/chat/completions", body);
        Assert.Equal(HttpStatusCode.Unauthorized, missing);
        Assert.Equal("invalid_api_key", error.GetProperty("code").GetString());
        Assert.Contains("API key is required", error.GetProperty("message").GetString());
        var (wrong, wrongError, _) = await Post(server, "/v1/chat/completions", body, key: "open");
        Assert.Equal(HttpStatusCode.Unauthorized, wrong);
        Assert.Contains("not valid", wrongError.GetProperty("message").GetString());
        Assert.Equal(HttpStatusCode.Unauthorized, (await server.Http.GetAsync("/v1/models")).StatusCode);
        var (right, _, response) = await Post(server, "/v1/chat/completions", body, key: "sesame");
        Assert.Equal(HttpStatusCode.OK, right);
        Assert.Equal(HttpStatusCode.OK, (await server.Http.GetAsync("/health")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await server.Http.GetAsync("/")).StatusCode);
        response.Dispose();
    }

    [Fact]
    public async Task FullQueue_Gets429_WithRetryAfter_AndTheServerRecovers()
    {
        // One slot, no queue; the scripted model sleeps 40 ms per token, so the first request holds the slot.
        await using var server = await ServerHarness.StartAsync(ServerHarness.ScriptedClient(delayMs: 40),
            new NativeReasonerServerOptions { MaxConcurrentSequences = 1, MaxQueueLength = 0 });
        const string body = """{"messages": [{"role": "user", "content": "What is 2 + 3?"}], "stream": true}""";
        using var first = await server.Http.SendAsync(
            new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = Json(body) },
            HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        var (status, error, rejected) = await Post(server, "/v1/chat/completions", body);
        Assert.Equal(HttpStatusCode.TooManyRequests, status);
        Assert.Equal("rate_limit_exceeded", error.GetProperty("code").GetString());
        Assert.Equal(TimeSpan.FromSeconds(1), rejected.Headers.RetryAfter?.Delta);
        Assert.Contains("nativereasoner_running_sequences 1\n", await server.Http.GetStringAsync("/metrics"));
        Assert.EndsWith("data: [DONE]\n\n", await first.Content.ReadAsStringAsync());
        // The slot is free again.
        var (again, _, _) = await Post(server, "/v1/chat/completions",
            """{"messages": [{"role": "user", "content": "What is 2 + 3?"}]}""");
        Assert.Equal(HttpStatusCode.OK, again);
        Assert.Contains("nativereasoner_requests_total{outcome=\"rejected\"} 1\n",
            await server.Http.GetStringAsync("/metrics"));
    }

    [Fact]
    public async Task ClientDisconnect_CancelsTheGeneration_AndFreesTheSlot()
    {
        // 40 ms per token: the script's ~45 tokens take ~1.8 s, the client leaves after the first chunk of text.
        await using var server = await ServerHarness.StartAsync(
            ServerHarness.ScriptedClient(out var policy, delayMs: 40),
            new NativeReasonerServerOptions { MaxConcurrentSequences = 1, MaxQueueLength = 0 });
        const string body = """{"messages": [{"role": "user", "content": "What is 2 + 3?"}], "stream": true}""";
        using (var response = await server.HangUpHttp.SendAsync(
                   new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = Json(body) },
                   HttpCompletionOption.ResponseHeadersRead))
        {
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            while (await reader.ReadLineAsync() is { } line && !line.Contains("reasoning_content")) { }
        }
        string metrics = "";
        for (int i = 0; i < 50 && !metrics.Contains("outcome=\"cancelled\"} 1\n"); i++)
        {
            await Task.Delay(100);
            metrics = await server.Http.GetStringAsync("/metrics");
        }
        Assert.Contains("nativereasoner_requests_total{outcome=\"cancelled\"} 1\n", metrics);
        Assert.Contains("nativereasoner_running_sequences 0\n", metrics);
        // The generation stopped early: far fewer tokens than the script holds.
        Assert.True(policy.Produced[0] < policy.ScriptLengths[0] / 2,
            $"produced {policy.Produced[0]} of {policy.ScriptLengths[0]} tokens");
        // The one slot serves the next request.
        var (status, _, _) = await Post(server, "/v1/chat/completions",
            """{"messages": [{"role": "user", "content": "What is 2 + 3?"}]}""");
        Assert.Equal(HttpStatusCode.OK, status);
    }
}
