using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.AI;
using NativeReasoner.RL;
using NativeReasoner.RL.Chat;
using NativeReasoner.Server;
using NativeReasoner.Serving;
using NativeReasoner.Tests.Serving;

namespace NativeReasoner.Tests.Server;

/// <summary>
/// A running server on a free loopback port over a chat client, with an <see cref="HttpClient"/> pointed at it.
/// Disposing stops the server, then disposes the chat client.
/// </summary>
internal sealed class ServerHarness : IAsyncDisposable
{
    // A Qwen-style template (tool calls in <tool_call> tags) with no forced thinking: the scripted output opens and
    // closes its own thinking block.
    public const string Template =
        "{% if tools %}Tools:{% for t in tools %} {{ t.function.name }}{% endfor %}\n" +
        "Call with <tool_call>{\"name\": ..., \"arguments\": ...}</tool_call>\n{% endif %}" +
        "{% for m in messages %}{% if m.role == 'tool' %}<tool_response>{{ m.content }}</tool_response>\n" +
        "{% else %}{{ m.role }}: {{ m.content }}\n{% endif %}{% endfor %}" +
        "{% if add_generation_prompt %}assistant:{% endif %}";

    public const string Reasoning = "add them: 5";
    public const string Answer = "The answer is 5.";
    public const string ScriptedOutput = "<think>\n" + Reasoning + "\n</think>\n\n" + Answer;
    public const string ToolAnswer = "It is sunny in Paris.";
    public const string ToolCallOutput =
        "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}</tool_call>";

    private readonly WebApplication _app;
    private readonly IChatClient _client;

    public Uri Url { get; }
    public HttpClient Http { get; }

    /// <summary>
    /// A client that really hangs up: disposing a response it has not read to the end closes the connection
    /// (the default handler instead reads the rest, up to 1 MB or 2 s, to reuse the connection).
    /// </summary>
    public HttpClient HangUpHttp { get; }

    private ServerHarness(WebApplication app, IChatClient client, Uri url)
    {
        _app = app;
        _client = client;
        Url = url;
        Http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromMinutes(3) };
        HangUpHttp = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0 })
        {
            BaseAddress = url, Timeout = TimeSpan.FromMinutes(3),
        };
    }

    public static async Task<ServerHarness> StartAsync(IChatClient client, NativeReasonerServerOptions? options = null)
    {
        var app = NativeReasonerServer.Create(client, options, "127.0.0.1", 0);
        await app.StartAsync();
        return new ServerHarness(app, client, NativeReasonerServer.BoundUrl(app));
    }

    /// <summary>
    /// A chat client over a scripted policy on the character tokenizer: "weather" in the prompt gets a tool call,
    /// a tool result <see cref="ToolAnswer"/>, anything else <see cref="ScriptedOutput"/>; <paramref name="delayMs"/>
    /// per token makes it slow.
    /// </summary>
    public static NativeReasonerChatClient ScriptedClient(int delayMs = 0, int contextLength = 4096) =>
        ScriptedClient(out _, delayMs, contextLength);

    /// <summary>The same, handing out the policy (its record of prompts and tokens produced).</summary>
    public static NativeReasonerChatClient ScriptedClient(out ScriptedPolicy policy, int delayMs = 0,
        int contextLength = 4096)
    {
        var tokenizer = new CharTokenizer();
        policy = new ScriptedPolicy(tokenizer, prompt =>
            prompt.Contains("<tool_response>", StringComparison.Ordinal) ? ToolAnswer
            : prompt.Contains("weather", StringComparison.Ordinal) && prompt.Contains("Tools:") ? ToolCallOutput
            : ScriptedOutput, delayMs);
        var prompt = ChatPrompt.FromTemplate(ChatTemplate.FromSource(Template));
        return new NativeReasonerChatClient(policy, tokenizer, prompt, contextLength, modelId: "scripted");
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        HangUpHttp.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        _client.Dispose();
    }
}
