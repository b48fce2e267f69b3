using System.ClientModel;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using OpenAI;
using OpenAI.Chat;
using Xunit;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;
using AiFinishReason = Microsoft.Extensions.AI.ChatFinishReason;
using OpenAIFinishReason = OpenAI.Chat.ChatFinishReason;

namespace NativeReasoner.Tests.Server;

/// <summary>
/// The server through real clients: the OpenAI .NET library's <see cref="ChatClient"/> (reasoning read through its
/// JSON Patch API, as it has no property for it) and Microsoft.Extensions.AI.OpenAI's <c>AsIChatClient()</c> on it,
/// which must surface the thinking as <see cref="TextReasoningContent"/>, the usage and the finish reason. The
/// scripted model writes a known thinking block and answer, or a tool call when offered a weather tool.
/// </summary>
public class OpenAIClientTests
{
    private static ChatClient OpenAIChat(ServerHarness server, string model = "scripted", string key = "unused") =>
        new(model, new ApiKeyCredential(key), new OpenAIClientOptions { Endpoint = new Uri(server.Url, "v1") });

    private static int Tokens(string text) => new NativeReasoner.RL.CharTokenizer().Encode(text).Length;

    [Fact]
    public async Task OpenAIClient_Streams_ReasoningApart_WithUsage()
    {
        await using var server = await ServerHarness.StartAsync(ServerHarness.ScriptedClient());
        var chat = OpenAIChat(server);
        var reasoning = new StringBuilder();
        var answer = new StringBuilder();
        OpenAIFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        int updates = 0;
        await foreach (var u in chat.CompleteChatStreamingAsync([new UserChatMessage("What is 2 + 3?")]))
        {
            updates++;
            foreach (var part in u.ContentUpdate) answer.Append(part.Text);
#pragma warning disable SCME0001 // JsonPatch is the client's documented way to read fields it has no property for.
            if (u.Patch.TryGetValue("$.choices[0].delta.reasoning_content"u8, out string? piece))
                reasoning.Append(piece);
#pragma warning restore SCME0001
            finish ??= u.FinishReason;
            usage ??= u.Usage;
        }
        Assert.Equal(ServerHarness.Reasoning, reasoning.ToString());
        Assert.Equal(ServerHarness.Answer, answer.ToString());
        Assert.Equal(OpenAIFinishReason.Stop, finish);
        // Streamed: one chunk per decoded piece, not one at the end.
        Assert.True(updates > 20, $"{updates} updates");
        Assert.NotNull(usage);
        Assert.Equal(Tokens(ServerHarness.ScriptedOutput) + 1, usage!.OutputTokenCount); // + EOS
        Assert.Equal(Tokens("<think>\n" + ServerHarness.Reasoning + "\n</think>"),
            usage.OutputTokenDetails.ReasoningTokenCount);
        Assert.Equal(Tokens("user: What is 2 + 3?\nassistant:"), usage.InputTokenCount);
        Assert.Equal(usage.InputTokenCount + usage.OutputTokenCount, usage.TotalTokenCount);
        Assert.Equal(0, usage.InputTokenDetails.CachedTokenCount);
    }

    [Fact]
    public async Task OpenAIClient_NonStreaming_ReadsReasoningContent_AndToolCalls()
    {
        await using var server = await ServerHarness.StartAsync(ServerHarness.ScriptedClient());
        var chat = OpenAIChat(server);
        ChatCompletion c = await chat.CompleteChatAsync([new UserChatMessage("What is 2 + 3?")],
            new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 200 });
        Assert.Equal(ServerHarness.Answer, c.Content[0].Text);
#pragma warning disable SCME0001
        Assert.Equal(ServerHarness.Reasoning, c.Patch.GetString("$.choices[0].message.reasoning_content"u8));
#pragma warning restore SCME0001
        Assert.Equal(OpenAIFinishReason.Stop, c.FinishReason);
        Assert.Equal(Tokens(ServerHarness.ScriptedOutput) + 1, c.Usage.OutputTokenCount);

        var options = new ChatCompletionOptions();
        options.Tools.Add(ChatTool.CreateFunctionTool("get_weather", "The weather of a city",
            BinaryData.FromString("""{"type": "object", "properties": {"city": {"type": "string"}}}""")));
        ChatCompletion call = await chat.CompleteChatAsync([new UserChatMessage("What is the weather in Paris?")],
            options);
        Assert.Equal(OpenAIFinishReason.ToolCalls, call.FinishReason);
        var toolCall = Assert.Single(call.ToolCalls);
        Assert.Equal("get_weather", toolCall.FunctionName);
        Assert.Equal("Paris", JsonDocument.Parse(toolCall.FunctionArguments.ToString()).RootElement
            .GetProperty("city").GetString());
        Assert.False(string.IsNullOrEmpty(toolCall.Id));

        // Max tokens cuts the answer: finish reason length.
        ChatCompletion cut = await chat.CompleteChatAsync([new UserChatMessage("What is 2 + 3?")],
            new ChatCompletionOptions { MaxOutputTokenCount = 5 });
        Assert.Equal(OpenAIFinishReason.Length, cut.FinishReason);
        Assert.Equal(5, cut.Usage.OutputTokenCount);
    }

    [Fact]
    public async Task ExtensionsAIOpenAI_SurfacesReasoning_Usage_AndFinishReason()
    {
        await using var server = await ServerHarness.StartAsync(ServerHarness.ScriptedClient());
        IChatClient ai = OpenAIChat(server).AsIChatClient();
        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in ai.GetStreamingResponseAsync([new AiChatMessage(ChatRole.User, "What is 2 + 3?")],
                           new ChatOptions { Temperature = 0 }))
            updates.Add(u);
        var contents = updates.SelectMany(u => u.Contents).ToList();
        Assert.Equal(ServerHarness.Reasoning,
            string.Concat(contents.OfType<TextReasoningContent>().Select(r => r.Text)));
        Assert.Equal(ServerHarness.Answer, string.Concat(contents.OfType<TextContent>().Select(t => t.Text)));
        // Reasoning comes before the answer.
        int lastReasoning = updates.FindLastIndex(u => u.Contents.OfType<TextReasoningContent>().Any());
        int firstAnswer = updates.FindIndex(u => u.Contents.OfType<TextContent>().Any(t => t.Text.Length > 0));
        Assert.True(lastReasoning < firstAnswer, $"reasoning until {lastReasoning}, answer from {firstAnswer}");
        var usage = Assert.Single(contents.OfType<UsageContent>()).Details;
        Assert.Equal(Tokens(ServerHarness.ScriptedOutput) + 1, usage.OutputTokenCount);
        Assert.Equal(Tokens("<think>\n" + ServerHarness.Reasoning + "\n</think>"), usage.ReasoningTokenCount);
        var finishes = updates.Select(u => u.FinishReason).Where(f => f != null).ToList();
        Assert.NotEmpty(finishes);
        Assert.All(finishes, f => Assert.Equal(AiFinishReason.Stop, f));

        var response = await ai.GetResponseAsync([new AiChatMessage(ChatRole.User, "What is 2 + 3?")]);
        Assert.Equal(ServerHarness.Answer, response.Text);
        Assert.Equal(ServerHarness.Reasoning, string.Concat(response.Messages.SelectMany(m => m.Contents)
            .OfType<TextReasoningContent>().Select(r => r.Text)));
        Assert.Equal(AiFinishReason.Stop, response.FinishReason);
        Assert.Equal(usage.OutputTokenCount, response.Usage!.OutputTokenCount);

        var weather = AIFunctionFactory.Create((string city) => $"sunny in {city}", "get_weather");
        var called = await ai.GetResponseAsync([new AiChatMessage(ChatRole.User, "What is the weather in Paris?")],
            new ChatOptions { Tools = [weather] });
        Assert.Equal(AiFinishReason.ToolCalls, called.FinishReason);
        var call = Assert.Single(called.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());
        Assert.Equal("get_weather", call.Name);
        Assert.Equal("Paris", call.Arguments!["city"]?.ToString());
    }

    [Fact]
    public async Task ExtensionsAIOpenAI_FunctionInvocation_SendsTheToolResultBack()
    {
        await using var server = await ServerHarness.StartAsync(ServerHarness.ScriptedClient());
        var cities = new List<string>();
        var weather = AIFunctionFactory.Create((string city) =>
        {
            cities.Add(city);
            return $"sunny in {city}";
        }, "get_weather");
        IChatClient ai = new ChatClientBuilder(OpenAIChat(server).AsIChatClient()).UseFunctionInvocation().Build();
        var response = await ai.GetResponseAsync([new AiChatMessage(ChatRole.User, "What is the weather in Paris?")],
            new ChatOptions { Tools = [weather] });
        // Called once with the model's argument; the second request carried the tool message and got the answer.
        Assert.Equal(["Paris"], cities);
        Assert.Equal(ServerHarness.ToolAnswer, response.Text);
        Assert.Equal(AiFinishReason.Stop, response.FinishReason);
    }
}
