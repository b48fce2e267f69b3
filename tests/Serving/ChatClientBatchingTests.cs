using System.Text.Json;
using Microsoft.Extensions.AI;
using NativeReasoner.Model;
using NativeReasoner.RL;
using NativeReasoner.RL.Chat;
using NativeReasoner.Serving;
using NativeReasoner.Tests.Cli;
using Xunit;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace NativeReasoner.Tests.Serving;

/// <summary>
/// <see cref="NativeReasonerChatClient"/> over its <see cref="BatchScheduler"/> on the tiny DeepSeek-V3 chat directory:
/// parallel calls equal sequential ones, a later turn reports its cached prefix, cancelling frees the slot, and the
/// scheduler's stats are reachable through <see cref="IChatClient.GetService"/>.
/// </summary>
public class ChatClientBatchingTests
{
    private static string Json(ChatResponse r) =>
        JsonSerializer.Serialize(r.Messages.SelectMany(m => m.Contents).Select(c => c.ToString()));

    [Fact]
    public async Task EightParallelCalls_EqualSequentialOnes_AndTheSlotsGoBack()
    {
        var dir = ChatCommandTests.ChatModelDir();
        try
        {
            using var client = NativeReasonerChatClient.Load(dir,
                new NativeReasonerChatClientOptions { MaxConcurrentSequences = 8 });
            string[] questions =
            [
                "What is 2 + 3?", "What is 7 * 8?", "a b c", "What is 10 - 4?", "hello", "Name a prime.",
                "Is 9 odd?", "Say something long enough to make this prompt the longest of the eight.",
            ];
            // Greedy and seeded sampling, different lengths: each sequence keeps its own options in the batch.
            ChatOptions OptionsFor(int i) => new()
            {
                Temperature = i % 2 == 0 ? 0 : 0.8f, TopK = i % 3 == 1 ? 5 : null, Seed = 10 + i,
                MaxOutputTokens = 6 + i,
            };
            var sequential = new List<string>();
            var usages = new List<UsageDetails>();
            for (int i = 0; i < questions.Length; i++)
            {
                var r = await client.GetResponseAsync([new AiChatMessage(ChatRole.User, questions[i])], OptionsFor(i));
                sequential.Add(Json(r));
                usages.Add(r.Usage!);
            }
            // Each sequential call was a new conversation: sharing only the template's opening with an idle slot, it
            // took a free slot (leaving the idle one's conversation cached) and reused nothing.
            Assert.All(usages, u => Assert.Equal(0, u.CachedInputTokenCount ?? 0));
            var stats = client.GetService<ChatSchedulerStats>()!;
            long stepsBefore = stats.DecodeSteps;
            using var start = new ManualResetEventSlim();
            var calls = questions.Select((q, i) => Task.Run(async () =>
            {
                start.Wait();
                return Json(await client.GetResponseAsync([new AiChatMessage(ChatRole.User, q)], OptionsFor(i)));
            })).ToArray();
            start.Set();
            var concurrent = await Task.WhenAll(calls);
            Assert.Equal(sequential, concurrent);
            Assert.True(sequential.Distinct().Count() > 4, "different questions should give different answers");

            var scheduler = client.GetService<BatchScheduler>()!;
            Assert.Equal(8, scheduler.SlotCounts.Slots);
            Assert.Equal(0, scheduler.SlotCounts.InUse);
            Assert.Equal(8, scheduler.SlotCounts.Idle + scheduler.SlotCounts.Free);
            Assert.Equal(16, stats.RequestsCompleted);
            Assert.Equal(0, stats.RunningSequences);
            Assert.Equal(0, stats.QueueDepth);
            Assert.Equal(16, stats.TimeToFirstTokenCount);
            Assert.True(stats.TimeToFirstTokenQuantile(0.5) > 0);
            long outputTokens = usages.Sum(u => u.OutputTokenCount ?? 0);
            Assert.Equal(2 * outputTokens, stats.GeneratedTokens);
            // The second round repeated the first round's prompts: each reused its own idle slot, the whole prompt but
            // its last token (run again for the first token's logits).
            Assert.Equal(usages.Sum(u => u.InputTokenCount!.Value - 1), stats.CachedPromptTokens);
            Assert.True(stats.DecodeSteps - stepsBefore < outputTokens - questions.Length,
                $"{stats.DecodeSteps - stepsBefore} decode steps for {outputTokens} tokens: not batched");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public async Task ASecondTurn_ReportsItsCachedPrefix_AndAnswersAsWithoutTheCache()
    {
        var dir = ChatCommandTests.ChatModelDir();
        try
        {
            using var cached = NativeReasonerChatClient.Load(dir);
            using var uncached = NativeReasonerChatClient.Load(dir,
                new NativeReasonerChatClientOptions { ReusePromptPrefix = false });
            var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 8 };
            List<AiChatMessage> conversation = [new(ChatRole.User, "What is 2 + 3?")];
            var first = await cached.GetResponseAsync(conversation, options);
            Assert.Equal(0, first.Usage!.CachedInputTokenCount ?? 0);
            conversation.Add(new AiChatMessage(ChatRole.Assistant, "5"));
            conversation.Add(new AiChatMessage(ChatRole.User, "And 3 + 4?"));
            var second = await cached.GetResponseAsync(conversation, options);
            var reference = await uncached.GetResponseAsync(conversation, options);
            Assert.Equal(Json(reference), Json(second));
            Assert.Equal(0, reference.Usage!.CachedInputTokenCount ?? 0);

            // At least the tokens both prompts share; never the whole prompt (its last token is always run).
            var tokenizer = cached.GetService<ITokenizer>()!;
            var prompt = cached.GetService<ChatPrompt>()!;
            var ids1 = tokenizer.Encode(ChatRequestRenderer.Render(prompt, conversation.Take(1), options));
            var ids2 = tokenizer.Encode(ChatRequestRenderer.Render(prompt, conversation, options));
            int shared = 0;
            while (shared < Math.Min(ids1.Length, ids2.Length) && ids1[shared] == ids2[shared]) shared++;
            Assert.True(shared > 5, $"the prompts share {shared} tokens");
            long cachedTokens = second.Usage!.CachedInputTokenCount ?? 0;
            Assert.InRange(cachedTokens, shared, ids2.Length - 1);
            Assert.Equal(ids2.Length, second.Usage.InputTokenCount);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public async Task Cancelling_FreesTheSlot_AndTheNextCallWorks()
    {
        var dir = ChatCommandTests.ChatModelDir();
        try
        {
            using var client = NativeReasonerChatClient.Load(dir,
                new NativeReasonerChatClientOptions { MaxConcurrentSequences = 2 });
            var scheduler = client.GetService<BatchScheduler>()!;
            var stats = client.GetService<ChatSchedulerStats>()!;
            using var cancel = new CancellationTokenSource();
            int seen = 0;
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
            {
                await foreach (var u in client.GetStreamingResponseAsync([new AiChatMessage(ChatRole.User, "Go")],
                                   new ChatOptions { Temperature = 0, MaxOutputTokens = 2000 }, cancel.Token))
                    if (++seen == 3) cancel.Cancel();
            });
            // A caller that stops reading early cancels too.
            await foreach (var u in client.GetStreamingResponseAsync([new AiChatMessage(ChatRole.User, "Again")],
                               new ChatOptions { Temperature = 0, MaxOutputTokens = 2000 }))
                break;
            var next = await client.GetResponseAsync([new AiChatMessage(ChatRole.User, "What is 2 + 3?")],
                new ChatOptions { Temperature = 0, MaxOutputTokens = 4 });
            Assert.Equal(4, next.Usage!.OutputTokenCount);
            Assert.Equal(0, scheduler.SlotCounts.InUse);
            Assert.Equal(2, stats.RequestsCancelled);
            Assert.Equal(1, stats.RequestsCompleted);
            Assert.True(stats.GeneratedTokens < 100, $"{stats.GeneratedTokens} tokens: the cancelled calls ran on");
        }
        finally { Directory.Delete(dir, true); }
    }
}
