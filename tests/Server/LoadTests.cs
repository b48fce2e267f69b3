using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using NativeReasoner.Server;
using NativeReasoner.Serving;
using NativeReasoner.Tests.Cli;
using Xunit;
using Xunit.Abstractions;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace NativeReasoner.Tests.Server;

/// <summary>
/// The tiny DeepSeek-V3 behind the server under concurrent streaming clients, a quarter of which hang up
/// mid-stream: every other request completes with exactly the greedy output the chat client gives alone, the
/// abandoned ones are cancelled and their slots freed, and the server answers afterwards.
/// </summary>
public class LoadTests(ITestOutputHelper output)
{
    private const int Clients = 8, RequestsPerClient = 4, MaxTokens = 10;

    private static string Question(int client, int request) => $"What is {client} + {request}?";

    private static string Body(string question, int maxTokens) => JsonSerializer.Serialize(
        new Dictionary<string, object>
        {
            ["messages"] = new[] { new Dictionary<string, string> { ["role"] = "user", ["content"] = question } },
            ["stream"] = true,
            ["temperature"] = 0,
            ["max_tokens"] = maxTokens,
        });

    /// <summary>Streams one request; with <paramref name="hangUp"/> it leaves after the first text chunk.</summary>
    private static async Task<string?> StreamAsync(HttpClient http, string question, bool hangUp)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent(Body(question, hangUp ? 400 : MaxTokens), Encoding.UTF8, "application/json"),
        };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var text = new StringBuilder();
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.Length == 0) continue;
            Assert.StartsWith("data: ", line);
            if (line == "data: [DONE]") return text.ToString();
            var choices = JsonDocument.Parse(line[6..]).RootElement.GetProperty("choices");
            if (choices.GetArrayLength() == 0) continue;
            var delta = choices[0].GetProperty("delta");
            foreach (var field in new[] { "reasoning_content", "content" })
                if (delta.TryGetProperty(field, out var piece)) text.Append(piece.GetString());
            if (hangUp && text.Length > 0) return null; // disposing the response closes the connection
        }
        throw new InvalidDataException("the stream ended without data: [DONE]");
    }

    [Fact]
    public async Task ConcurrentClients_WithDisconnects_GetTheSequentialGreedyOutputs()
    {
        var dir = ChatCommandTests.ChatModelDir();
        try
        {
            var client = NativeReasonerChatClient.Load(dir);
            // The oracle: each question alone through the chat client, greedy.
            var expected = new Dictionary<string, string>();
            for (int c = 0; c < Clients; c++)
                for (int r = 0; r < RequestsPerClient; r++)
                {
                    var q = Question(c, r);
                    var response = await client.GetResponseAsync([new AiChatMessage(ChatRole.User, q)],
                        new ChatOptions { Temperature = 0, MaxOutputTokens = MaxTokens });
                    expected[q] = string.Concat(response.Messages.SelectMany(m => m.Contents).Select(x => x switch
                    {
                        TextReasoningContent t => t.Text,
                        TextContent t => t.Text,
                        _ => "",
                    }));
                    Assert.NotEmpty(expected[q]);
                }

            await using var server = await ServerHarness.StartAsync(client,
                new NativeReasonerServerOptions { MaxConcurrentSequences = 4, MaxQueueLength = 64 });
            // Clients 0 and 4 (a quarter) hang up on their second request.
            bool HangsUp(int c, int r) => c % 4 == 0 && r == 1;
            var results = await Task.WhenAll(Enumerable.Range(0, Clients).Select(c => Task.Run(async () =>
            {
                var outputs = new List<(string Question, string? Text)>();
                for (int r = 0; r < RequestsPerClient; r++)
                    outputs.Add((Question(c, r), await StreamAsync(HangsUp(c, r) ? server.HangUpHttp : server.Http,
                        Question(c, r), HangsUp(c, r))));
                return outputs;
            })));
            int hungUp = 0;
            foreach (var (question, text) in results.SelectMany(x => x))
            {
                if (text == null) hungUp++;
                else Assert.Equal(expected[question], text);
            }
            Assert.Equal(2, hungUp);

            // The abandoned generations are cancelled and their slots freed.
            string metrics = "";
            for (int i = 0; i < 100; i++)
            {
                metrics = await server.Http.GetStringAsync("/metrics");
                if (metrics.Contains("nativereasoner_running_sequences 0\n")) break;
                await Task.Delay(100);
            }
            output.WriteLine(metrics);
            Assert.Contains("nativereasoner_running_sequences 0\n", metrics);
            Assert.Contains("nativereasoner_queue_depth 0\n", metrics);
            int completed = Clients * RequestsPerClient - 2;
            Assert.Contains($"nativereasoner_requests_total{{outcome=\"completed\"}} {completed}\n", metrics);
            Assert.Contains("nativereasoner_requests_total{outcome=\"cancelled\"} 2\n", metrics);
            Assert.Equal(expected[Question(0, 1)], await StreamAsync(server.Http, Question(0, 1), hangUp: false));

            // An over-long prompt is refused before it queues (the model's context is 4096 positions).
            var longPrompt = await server.Http.PostAsync("/v1/chat/completions", new StringContent(
                Body(new string('1', 5000), 4), Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.BadRequest, longPrompt.StatusCode);
            var error = JsonDocument.Parse(await longPrompt.Content.ReadAsStringAsync()).RootElement
                .GetProperty("error");
            Assert.Equal("messages", error.GetProperty("param").GetString());
            Assert.Equal("context_length_exceeded", error.GetProperty("code").GetString());
        }
        finally { Directory.Delete(dir, true); }
    }
}
