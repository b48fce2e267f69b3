using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using NativeReasoner.Server;
using Xunit;

namespace NativeReasoner.Tests.Server;

/// <summary>
/// <c>app.MapNativeReasonerOpenAI()</c> in an application's own host: the chat client comes from its container,
/// its own root page stays when the chat page is left out.
/// </summary>
public class EmbeddingTests
{
    [Fact]
    public async Task MapNativeReasonerOpenAI_ServesFromTheApplicationsContainer()
    {
        using var client = ServerHarness.ScriptedClient();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.AddSingleton<IChatClient>(client);
        await using var app = builder.Build();
        app.MapGet("/", () => Results.Text("my own page"));
        app.MapNativeReasonerOpenAI(new NativeReasonerServerOptions { MapChatPage = false, MaxTokens = 64 });
        await app.StartAsync();
        try
        {
            using var http = new HttpClient { BaseAddress = NativeReasonerServer.BoundUrl(app) };
            Assert.Equal("my own page", await http.GetStringAsync("/"));
            var response = await http.PostAsync("/v1/chat/completions", new StringContent(
                """{"messages": [{"role": "user", "content": "What is 2 + 3?"}]}""", Encoding.UTF8,
                "application/json"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var message = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement
                .GetProperty("choices")[0].GetProperty("message");
            Assert.Equal(ServerHarness.Answer, message.GetProperty("content").GetString());
            Assert.Equal(ServerHarness.Reasoning, message.GetProperty("reasoning_content").GetString());
            // This application's limit, not the default.
            var tooMany = await http.PostAsync("/v1/chat/completions", new StringContent(
                """{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 65}""", Encoding.UTF8,
                "application/json"));
            Assert.Equal(HttpStatusCode.BadRequest, tooMany.StatusCode);
        }
        finally { await app.StopAsync(); }
    }
}
