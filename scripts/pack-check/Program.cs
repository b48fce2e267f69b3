// The outside consumer run by scripts/pack-check.sh, built from the packages in a local feed only: it writes a
// tiny DeepSeek-V3 model directory with the packaged engine, then streams replies through the packaged
// IChatClient (direct and through DI, on the CPU and on the CUDA emulator the package carries). Exit code 0 only
// when every check held; each failed check is printed.
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using NativeReasoner;
using NativeReasoner.Model;
using NativeReasoner.RL;
using NativeReasoner.Serving;

if (args.Length != 1)
{
    Console.Error.WriteLine("usage: consumer MODEL_DIRECTORY (created; must not exist)");
    return 2;
}
string dir = args[0];
var failures = new List<string>();
void Check(bool ok, string what)
{
    Console.WriteLine($"{(ok ? "ok  " : "FAIL")} {what}");
    if (!ok) failures.Add(what);
}

// A model directory as a user would get from `nr train`: config.json, model.safetensors, the tokenizer, and a
// chat template that opens the thinking block (or closes it at once with enable_thinking=false).
var tokenizer = new CharTokenizer();
var config = ModelPresets.Get("tiny").ForTokenizer(tokenizer.VocabSize, tokenizer.EosId, tokenizer.BosId,
    tokenizer.PadId);
using (var bundle = ModelBundle.Create(config.Build(new Generator(7)), tokenizer, PromptTemplate.Default))
    bundle.Save(dir);
File.WriteAllText(Path.Combine(dir, "chat_template.jinja"),
    "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant: " +
    "{% if enable_thinking is defined and not enable_thinking %}<think></think>{% else %}<think>\n{% endif %}" +
    "{% endif %}");

async Task<(string Reasoning, string Answer, ChatResponseUpdate? Last, int Updates)> Stream(IChatClient chat,
    ChatOptions options)
{
    string reasoning = "", answer = "";
    ChatResponseUpdate? last = null;
    int updates = 0, finishesBeforeLast = 0;
    await foreach (var update in chat.GetStreamingResponseAsync("What is 2 + 3?", options))
    {
        if (last?.FinishReason != null) finishesBeforeLast++;
        foreach (var content in update.Contents)
        {
            if (content is TextReasoningContent thinking) { reasoning += thinking.Text; Console.Write(thinking.Text); }
            else if (content is TextContent text) { answer += text.Text; Console.Write(text.Text); }
        }
        last = update;
        updates++;
    }
    Console.WriteLine();
    Check(finishesBeforeLast == 0, "only the last update has a finish reason");
    return (reasoning, answer, last, updates);
}

var greedy = new ChatOptions { Temperature = 0, MaxOutputTokens = 16 };
string cpuReasoning;
using (var chat = NativeReasonerChatClient.Load(dir))
{
    Console.WriteLine("-- thinking (streamed, greedy):");
    var (reasoning, answer, last, updates) = await Stream(chat, greedy);
    cpuReasoning = reasoning;
    Check(updates > 1, $"streamed {updates} updates");
    Check(reasoning.Length > 0, "the template opened the thinking block: the reply streamed as TextReasoningContent");
    var usage = last?.Contents.OfType<UsageContent>().SingleOrDefault()?.Details;
    Check(usage is { InputTokenCount: > 0, OutputTokenCount: > 0 },
        $"the last update has usage (input {usage?.InputTokenCount}, output {usage?.OutputTokenCount})");
    Check(last?.FinishReason == ChatFinishReason.Length || last?.FinishReason == ChatFinishReason.Stop,
        $"finish reason {last?.FinishReason}");

    var response = await chat.GetResponseAsync("What is 2 + 3?", greedy);
    string whole = string.Concat(response.Messages.SelectMany(m => m.Contents).OfType<TextReasoningContent>()
        .Select(c => c.Text));
    Check(whole == reasoning && response.Text == answer, "GetResponseAsync returns what the stream returned");

    Console.WriteLine("-- answer (enable_thinking=false, sampled at 0.8):");
    var noThinking = new ChatOptions
    {
        Temperature = 0.8f, Seed = 3, MaxOutputTokens = 16,
        AdditionalProperties = new AdditionalPropertiesDictionary { ["enable_thinking"] = false },
    };
    var (noReasoning, directAnswer, _, _) = await Stream(chat, noThinking);
    Check(noReasoning.Length == 0 && directAnswer.Length > 0, "with thinking closed the reply is TextContent");
}

// Through dependency injection, as an ASP.NET app would take it.
var services = new ServiceCollection();
services.AddNativeReasonerChatClient(dir, o => o.DefaultMaxOutputTokens = 8);
using (var provider = services.BuildServiceProvider())
{
    var chat = provider.GetRequiredService<IChatClient>();
    var metadata = chat.GetService<ChatClientMetadata>();
    Check(metadata?.ProviderName == "NativeReasoner", $"DI gives the client (provider {metadata?.ProviderName})");
    var reply = await chat.GetResponseAsync("What is 2 + 3?", new ChatOptions { Temperature = 0 });
    Check(reply.Usage?.OutputTokenCount is > 0 and <= 8, $"DI client answers ({reply.Usage?.OutputTokenCount} tokens)");
}

// The CUDA emulator from the package's runtimes/linux-x64/native.
if (OperatingSystem.IsLinux() && System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture ==
    System.Runtime.InteropServices.Architecture.X64)
{
    Console.WriteLine("-- thinking on cuda:emu (greedy):");
    using var chat = NativeReasonerChatClient.Load(dir, new NativeReasonerChatClientOptions
    {
        Device = Device.Parse("cuda:emu"),
    });
    var (reasoning, _, last, _) = await Stream(chat, greedy);
    Check(reasoning.Length > 0 && last?.FinishReason != null, "the packaged CUDA emulator loads and generates");
    // Other kernels, other float rounding: a flipped argmax on a random model is possible, so this is reported.
    Console.WriteLine($"info cuda:emu greedy text {(reasoning == cpuReasoning ? "equals" : "differs from")} the CPU's");
}

Console.WriteLine(failures.Count == 0 ? "consumer: all checks passed" : $"consumer: {failures.Count} check(s) failed");
return failures.Count == 0 ? 0 : 1;
