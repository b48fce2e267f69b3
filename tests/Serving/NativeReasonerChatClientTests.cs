using System.Text.Json;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using NativeReasoner.Model;
using NativeReasoner.RL;
using NativeReasoner.RL.Chat;
using NativeReasoner.Serving;
using NativeReasoner.Tests.Cli;
using Xunit;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace NativeReasoner.Tests.Serving;

/// <summary>
/// <see cref="NativeReasonerChatClient"/> on the tiny DeepSeek-V3 chat directory (its template forces the thinking
/// block open) and on scripted policies for outputs a random model cannot write (closed thinking, tool calls).
/// </summary>
public class NativeReasonerChatClientTests
{
    // A template without forced thinking; Qwen-style tools in the system turn, tool results, assistant tool calls.
    private const string ToolTemplate =
        "{% if tools %}Tools:{% for t in tools %} {{ t.function.name }}({{ t.function.parameters | tojson }})" +
        "{% endfor %}\nCall with <tool_call>{\"name\": ..., \"arguments\": ...}</tool_call>\n{% endif %}" +
        "{% for m in messages %}{% if m.role == 'tool' %}<tool_response>{{ m.content }}</tool_response>\n" +
        "{% elif m.tool_calls %}{{ m.role }}:{% for c in m.tool_calls %} <tool_call>{\"name\": " +
        "\"{{ c.function.name }}\", \"arguments\": {{ c.function.arguments | tojson }}}</tool_call>{% endfor %}\n" +
        "{% else %}{{ m.role }}: {{ m.content }}\n{% endif %}{% endfor %}" +
        "{% if add_generation_prompt %}assistant:{% if enable_thinking is defined and not enable_thinking %}" +
        " <think></think>{% endif %}{% endif %}";

    private static readonly AiChatMessage[] Question = [new(ChatRole.User, "What is 2 + 3?")];

    private static (string Reasoning, string Answer, ChatFinishReason? Finish, UsageDetails? Usage) Collect(
        IEnumerable<ChatResponseUpdate> updates)
    {
        var list = updates.ToList();
        var reasoning = string.Concat(list.SelectMany(u => u.Contents).OfType<TextReasoningContent>()
            .Select(c => c.Text));
        var answer = string.Concat(list.SelectMany(u => u.Contents).OfType<TextContent>().Select(c => c.Text));
        var usage = list.SelectMany(u => u.Contents).OfType<UsageContent>().SingleOrDefault()?.Details;
        // The finish reason and the usage come once, on the last update.
        Assert.All(list.SkipLast(1), u => Assert.Null(u.FinishReason));
        return (reasoning, answer, list.LastOrDefault()?.FinishReason, usage);
    }

    private static async Task<List<ChatResponseUpdate>> Stream(IChatClient client, IEnumerable<AiChatMessage> messages,
        ChatOptions? options = null, CancellationToken cancel = default)
    {
        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in client.GetStreamingResponseAsync(messages, options, cancel)) updates.Add(u);
        return updates;
    }

    private static NativeReasonerChatClient Scripted(ScriptedPolicy policy, ITokenizer tokenizer,
        string template = ToolTemplate) =>
        new(policy, tokenizer, ChatPrompt.FromTemplate(ChatTemplate.FromSource(template)), contextLength: 4096,
            modelId: "scripted");

    [Fact]
    public async Task Streaming_EqualsNonStreaming_AndTextGeneration_AtTemperatureZero()
    {
        var dir = ChatCommandTests.ChatModelDir();
        try
        {
            using var client = NativeReasonerChatClient.Load(dir);
            var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 12 };
            var streamed = Collect(await Stream(client, Question, options));
            var response = await client.GetResponseAsync(Question, options);
            var reasoning = string.Concat(response.Messages.SelectMany(m => m.Contents).OfType<TextReasoningContent>()
                .Select(c => c.Text));
            Assert.Equal(streamed.Answer, response.Text);
            Assert.Equal(streamed.Reasoning, reasoning);
            Assert.Equal(streamed.Finish, response.FinishReason);

            // The oracle: the same prompt through TextGeneration, split in one piece.
            var bundle = (ModelBundle)client.GetService(typeof(ModelBundle))!;
            var promptText = ChatPrompt.Load(dir).Render([new NativeReasoner.RL.Chat.ChatMessage("user",
                "What is 2 + 3?")]);
            var ids = bundle.Tokenizer.Encode(promptText).Select(i => (long)i).ToArray();
            var direct = TextGeneration.Generate(bundle.Policy.Model, [ids],
                new GenerationOptions { MaxNewTokens = 12, Temperature = 0, EosTokenIds = [bundle.Tokenizer.EosId] },
                new Generator(0));
            var tokens = direct.Tokens[0];
            var text = bundle.Tokenizer.Decode(tokens.Where(t => t != bundle.Tokenizer.EosId).Select(t => (int)t));
            var parts = ThinkingSplit.Split(text, thinkingForced: true);
            Assert.Equal(parts.Reasoning, streamed.Reasoning);
            Assert.Equal(parts.Answer, streamed.Answer);
            Assert.Equal(direct.FinishReasons[0] == FinishReason.Length ? ChatFinishReason.Length
                : ChatFinishReason.Stop, streamed.Finish);
            Assert.NotNull(response.Usage);
            Assert.Equal(ids.Length, response.Usage!.InputTokenCount);
            Assert.Equal(tokens.Length, response.Usage.OutputTokenCount);
            Assert.Equal(ids.Length + tokens.Length, response.Usage.TotalTokenCount);
            // Forced thinking that never closed: every output token is reasoning.
            if (!parts.ThinkingClosed) Assert.Equal(tokens.Length, response.Usage.ReasoningTokenCount);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public async Task ReasoningAndAnswer_AreSplit_WithUsageCounts()
    {
        var tokenizer = new CharTokenizer();
        const string output = "<think>\nadd them: 5\n</think>\n\nThe answer is 5.";
        var policy = new ScriptedPolicy(tokenizer, _ => output);
        using var client = Scripted(policy, tokenizer);
        var updates = await Stream(client, Question);
        var (reasoning, answer, finish, usage) = Collect(updates);
        Assert.Equal("add them: 5", reasoning);
        Assert.Equal("The answer is 5.", answer);
        Assert.Equal(ChatFinishReason.Stop, finish);
        // The reasoning streams first, then the answer.
        int lastReasoning = updates.FindLastIndex(u => u.Contents.OfType<TextReasoningContent>().Any());
        int firstAnswer = updates.FindIndex(u => u.Contents.OfType<TextContent>().Any());
        Assert.InRange(lastReasoning, 0, firstAnswer - 1);
        // One update per decoded piece: many, not one.
        Assert.True(updates.Count > 10, $"{updates.Count} updates");
        int promptTokens = tokenizer.Encode(policy.Prompts[0]).Length;
        int outputTokens = tokenizer.Encode(output).Length + 1; // + EOS
        int reasoningTokens = tokenizer.Encode("<think>\nadd them: 5\n</think>").Length;
        Assert.Equal(promptTokens, usage!.InputTokenCount);
        Assert.Equal(outputTokens, usage.OutputTokenCount);
        Assert.Equal(reasoningTokens, usage.ReasoningTokenCount);
        Assert.Equal(promptTokens + outputTokens, usage.TotalTokenCount);
        Assert.All(updates, u => Assert.Equal(ChatRole.Assistant, u.Role));
        Assert.Single(updates.Select(u => u.ResponseId).Distinct());
        Assert.All(updates, u => Assert.Equal("scripted", u.ModelId));
    }

    [Fact]
    public async Task StopSequences_StopGeneration_AndAreTrimmed_MaxOutputTokensEndsAsLength()
    {
        var tokenizer = new CharTokenizer();
        const string output = "alpha beta gamma delta";
        var policy = new ScriptedPolicy(tokenizer, _ => output);
        using var client = Scripted(policy, tokenizer);
        var options = new ChatOptions { StopSequences = ["zeta", "a gam", "delta"] };
        var streamed = Collect(await Stream(client, Question, options));
        Assert.Equal("alpha bet", streamed.Answer);
        Assert.Equal(ChatFinishReason.Stop, streamed.Finish);
        Assert.Equal("alpha beta gam".Length, policy.Produced[^1]); // generation ended at the stop sequence
        var response = await client.GetResponseAsync(Question, options);
        Assert.Equal("alpha bet", response.Text);

        var shortAnswer = await client.GetResponseAsync(Question, new ChatOptions { MaxOutputTokens = 3 });
        Assert.Equal("alp", shortAnswer.Text);
        Assert.Equal(ChatFinishReason.Length, shortAnswer.FinishReason);
        Assert.Equal(3, shortAnswer.Usage!.OutputTokenCount);

        // A stop sequence inside the reasoning cuts there too.
        var thinking = new ScriptedPolicy(tokenizer, _ => "<think>step one. step two</think>done");
        using var thinkingClient = Scripted(thinking, tokenizer);
        var cut = Collect(await Stream(thinkingClient, Question, new ChatOptions { StopSequences = ["two"] }));
        Assert.Equal("step one. step", cut.Reasoning);
        Assert.Equal("", cut.Answer);
    }

    [Fact]
    public async Task Cancellation_StopsBetweenTokens_AndTheClientServesTheNextRequest()
    {
        var tokenizer = new CharTokenizer();
        var policy = new ScriptedPolicy(tokenizer, _ => new string('x', 400), delayMs: 5);
        using var client = Scripted(policy, tokenizer);
        using var cancel = new CancellationTokenSource();
        int seen = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var u in client.GetStreamingResponseAsync(Question, null, cancel.Token))
                if (++seen == 3) cancel.Cancel();
        });
        // The next request queues behind the cancelled one, so by its end the first has stopped.
        var next = await client.GetResponseAsync(Question, new ChatOptions { MaxOutputTokens = 5 });
        Assert.Equal(2, policy.Produced.Count);
        Assert.InRange(policy.Produced[0], 3, 200);
        Assert.Equal(5, next.Text.Length);

        // A request cancelled before it starts never generates.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            client.GetResponseAsync(Question, null, new CancellationToken(canceled: true)));
        Assert.Equal(2, policy.Produced.Count);
    }

    [Fact]
    public async Task Dispose_CancelsTheRequestInFlight_AndRefusesNewOnes()
    {
        var tokenizer = new CharTokenizer();
        var policy = new ScriptedPolicy(tokenizer, _ => new string('y', 400), delayMs: 5);
        var client = Scripted(policy, tokenizer);
        var first = new TaskCompletionSource();
        var running = Task.Run(async () =>
        {
            await foreach (var u in client.GetStreamingResponseAsync(Question)) first.TrySetResult();
        });
        await first.Task;
        client.Dispose(); // joins the worker: the generation has stopped when it returns
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
        Assert.InRange(policy.Produced.Single(), 1, 399);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => client.GetResponseAsync(Question));
    }

    [Fact]
    public async Task ConcurrentCalls_GiveTheSameResults_AsSequentialOnes()
    {
        var dir = ChatCommandTests.ChatModelDir();
        try
        {
            using var client = NativeReasonerChatClient.Load(dir);
            string[] questions = ["What is 2 + 3?", "What is 7 * 8?", "a b c", "What is 10 - 4?"];
            ChatOptions OptionsFor(int i) => new()
            {
                Temperature = i % 2 == 0 ? 0 : 0.8f, Seed = 10 + i,
                MaxOutputTokens = 8
            };
            var sequential = new List<string>();
            for (int i = 0; i < questions.Length; i++)
            {
                var r = await client.GetResponseAsync([new AiChatMessage(ChatRole.User, questions[i])], OptionsFor(i));
                sequential.Add(JsonSerializer.Serialize(
                    r.Messages.SelectMany(m => m.Contents).Select(c => c.ToString())));
            }
            var concurrent = await Task.WhenAll(questions.Select((q, i) => Task.Run(async () =>
            {
                var r = await client.GetResponseAsync([new AiChatMessage(ChatRole.User, q)], OptionsFor(i));
                return JsonSerializer.Serialize(r.Messages.SelectMany(m => m.Contents).Select(c => c.ToString()));
            })));
            Assert.Equal(sequential, concurrent);
            Assert.True(sequential.Distinct().Count() > 1, "different questions should give different answers");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public async Task FunctionInvocation_RoundTrip_ThroughTheTemplatesToolCallFormat()
    {
        var tokenizer = new CharTokenizer();
        var policy = new ScriptedPolicy(tokenizer, prompt =>
        {
            int at = prompt.LastIndexOf("<tool_response>", StringComparison.Ordinal);
            if (at < 0) return "<think>need the weather</think><tool_call>{\"name\": \"get_weather\", " +
                                "\"arguments\": {\"city\": \"Paris\"}}</tool_call>";
            var result = prompt[(at + "<tool_response>".Length)..prompt.IndexOf("</tool_response>", at,
                StringComparison.Ordinal)];
            return "It is " + result + ".";
        });
        using var inner = Scripted(policy, tokenizer);
        using var client = new ChatClientBuilder(inner).UseFunctionInvocation().Build();
        var weather = AIFunctionFactory.Create((string city) => $"sunny in {city}", "get_weather",
            "The weather of a city");
        var response = await client.GetResponseAsync([new AiChatMessage(ChatRole.User, "Weather in Paris?")],
            new ChatOptions { Tools = [weather] });
        Assert.Equal("It is sunny in Paris.", response.Messages[^1].Text);
        Assert.Equal(2, policy.Prompts.Count);
        // The tools went through the template's tools variable; the call and its result came back in the prompt
        // (a newline right after a block tag is dropped, as transformers' trim_blocks does).
        Assert.Contains("Tools: get_weather({", policy.Prompts[0]);
        Assert.Contains("\"city\"", policy.Prompts[0]);
        const string replayed = "assistant: <tool_call>{\"name\": \"get_weather\", \"arguments\": " +
            "{\"city\": \"Paris\"}}</tool_call><tool_response>sunny in Paris</tool_response>\nassistant:";
        Assert.True(policy.Prompts[1].EndsWith(replayed, StringComparison.Ordinal), policy.Prompts[1]);
        var call = response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().Single();
        Assert.Equal("get_weather", call.Name);

        // Without tools in the request the same output stays text.
        var plain = await inner.GetResponseAsync([new AiChatMessage(ChatRole.User, "Weather in Paris?")]);
        Assert.Contains("<tool_call>", plain.Text);
        Assert.Equal(ChatFinishReason.Stop, plain.FinishReason);
    }

    [Fact]
    public async Task ToolCalls_AreFinishReasonToolCalls_AndMalformedBlocksStayText()
    {
        var tokenizer = new CharTokenizer();
        var policy = new ScriptedPolicy(tokenizer, p => p.Contains("bad") ? "x <tool_call>{not json}</tool_call>"
            : "Let me check. <tool_call>{\"name\": \"f\", \"arguments\": {\"n\": 2}}</tool_call>");
        using var client = Scripted(policy, tokenizer);
        var tools = new ChatOptions { Tools = [AIFunctionFactory.Create((int n) => n * 2, "f")] };
        var updates = await Stream(client, Question, tools);
        var call = updates.SelectMany(u => u.Contents).OfType<FunctionCallContent>().Single();
        Assert.Equal("f", call.Name);
        Assert.Equal(2, ((JsonElement)call.Arguments!["n"]!).GetInt32());
        Assert.Equal(ChatFinishReason.ToolCalls, updates[^1].FinishReason);
        Assert.Equal("Let me check.", Collect(updates).Answer.Trim());
        var bad = await client.GetResponseAsync([new AiChatMessage(ChatRole.User, "bad")], tools);
        Assert.Equal("x <tool_call>{not json}</tool_call>", bad.Text);
        Assert.Empty(bad.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());
    }

    [Fact]
    public void AdditionalProperties_ReachTheTemplate_AsVariables()
    {
        var prompt = ChatPrompt.FromTemplate(ChatTemplate.FromSource(ToolTemplate));
        var on = ChatRequestRenderer.Render(prompt, Question, null);
        var off = ChatRequestRenderer.Render(prompt, Question,
            new ChatOptions { AdditionalProperties = new() { ["enable_thinking"] = false } });
        Assert.Equal("user: What is 2 + 3?\nassistant:", on);
        Assert.Equal("user: What is 2 + 3?\nassistant: <think></think>", off);
    }

    [Fact]
    public async Task BadOptions_FailClearly()
    {
        var tokenizer = new CharTokenizer();
        using var client = Scripted(new ScriptedPolicy(tokenizer, _ => "x"), tokenizer);
        var e = await Assert.ThrowsAsync<ArgumentException>(() =>
            client.GetResponseAsync(Question, new ChatOptions { MaxOutputTokens = 0 }));
        Assert.Contains("MaxOutputTokens must be ≥ 1, got 0", e.Message);
        e = await Assert.ThrowsAsync<ArgumentException>(() =>
            client.GetResponseAsync(Question, new ChatOptions { TopP = 1.5f }));
        Assert.Contains("TopP must be in (0, 1], got 1.5", e.Message);
        e = await Assert.ThrowsAsync<ArgumentException>(() =>
            client.GetResponseAsync(Question, new ChatOptions { Temperature = float.NaN }));
        Assert.Contains("Temperature", e.Message);
        await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync([], null));
        using var tiny = new NativeReasonerChatClient(new ScriptedPolicy(tokenizer, _ => "x"), tokenizer,
            ChatPrompt.FromTemplate(ChatTemplate.FromSource(ToolTemplate)), contextLength: 8);
        e = await Assert.ThrowsAsync<ArgumentException>(() => tiny.GetResponseAsync(Question));
        Assert.Contains("fills the model's context of 8 positions", e.Message);
        client.Dispose();
        Assert.Throws<ObjectDisposedException>(() => client.GetStreamingResponseAsync(Question).GetAsyncEnumerator()
            .MoveNextAsync().AsTask().GetAwaiter().GetResult());
    }

    [Fact]
    public async Task DependencyInjection_ComposesMiddleware_AndGetServiceExposesMetadataModelTokenizer()
    {
        var dir = ChatCommandTests.ChatModelDir();
        try
        {
            var services = new ServiceCollection();
            services.AddNativeReasonerChatClient(dir, o => o.ModelId = "tiny-v3").UseFunctionInvocation();
            await using (var provider = services.BuildServiceProvider())
            {
                var client = provider.GetRequiredService<IChatClient>();
                Assert.IsType<FunctionInvokingChatClient>(client);
                var metadata = client.GetService<ChatClientMetadata>()!;
                Assert.Equal("NativeReasoner", metadata.ProviderName);
                Assert.Equal("tiny-v3", metadata.DefaultModelId);
                Assert.Equal("deepseek_v3", client.GetService<ICausalLM>()!.Config.ModelType);
                Assert.NotNull(client.GetService<ITokenizer>());
                Assert.NotNull(client.GetService<NativeReasonerChatClient>());
                var r = await client.GetResponseAsync(Question, new ChatOptions
                {
                    MaxOutputTokens = 3,
                    Temperature = 0
                });
                Assert.Equal(3, r.Usage!.OutputTokenCount);
                Assert.Equal("tiny-v3", r.ModelId);
            }
            Assert.Throws<DirectoryNotFoundException>(() =>
                new ServiceCollection().AddNativeReasonerChatClient(Path.Combine(dir, "missing")));
        }
        finally { Directory.Delete(dir, true); }
    }
}
