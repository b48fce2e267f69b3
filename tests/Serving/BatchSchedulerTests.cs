using NativeReasoner.Model;
using NativeReasoner.Serving;
using Xunit;
using static NativeReasoner.Tests.Model.ModelTestUtil;

namespace NativeReasoner.Tests.Serving;

/// <summary>
/// <see cref="BatchScheduler"/> on the reference fixtures (DeepSeek-V3's MLA cache, Qwen2's GQA cache): a request's
/// greedy output is the same alone or batched with others that join at other steps, and equals
/// <see cref="TextGeneration"/>; cancelling frees the slot; slots go back to the pool; a later turn reuses the
/// cached prefix.
/// </summary>
public class BatchSchedulerTests
{
    public static TheoryData<string> Fixtures => new() { "deepseek-v3-tiny-yarn", "qwen2-tiny-ref" };

    private static readonly long[][] Prompts =
        [[5, 17, 33, 2, 9, 41, 60], [7, 3], [12, 50, 44, 44, 8], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [30]];

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    /// <summary>A request whose tokens and end are recorded.</summary>
    private sealed class Recorded
    {
        public List<long> Tokens { get; } = [];
        public TaskCompletionSource<SequenceOutcome> Done { get; } =
            new(TaskCreationOptions.RunContinuationsAsynchronously);

        public SequenceRequest Request(long[] prompt, int maxNew, float temperature = 0, ulong seed = 0,
            CancellationToken cancel = default, Action<int>? onToken = null, long[]? eos = null) =>
            new(prompt, maxNew, new GenerationOptions { Temperature = temperature, TopK = 0, TopP = 1 },
                new Generator(seed), eos ?? [])
            {
                Cancellation = cancel,
                OnToken = t =>
                {
                    Tokens.Add(t);
                    onToken?.Invoke(Tokens.Count);
                },
                OnFinish = o => Done.TrySetResult(o),
                OnError = e => Done.TrySetException(e),
            };

        public SequenceOutcome Wait() => Done.Task.WaitAsync(Timeout).GetAwaiter().GetResult();
    }

    private static long[] RunAlone(ICausalLM model, long[] prompt, int maxNew, float temperature = 0, ulong seed = 0)
    {
        using var scheduler = new BatchScheduler(model, slots: 1, slotCapacity: 64);
        var r = new Recorded();
        scheduler.Enqueue(r.Request(prompt, maxNew, temperature, seed));
        return r.Wait().Tokens;
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void GreedyOutput_IsTheSameAloneOrBatched_WithRequestsJoiningAtDifferentSteps(string fixture)
    {
        using var model = CausalLMRegistry.Load(Fixture(fixture));
        const int maxNew = 10;
        var alone = Prompts.Select(p => RunAlone(model, p, maxNew)).ToArray();
        // The oracle for the first: TextGeneration's batch-of-one greedy decode.
        var direct = TextGeneration.Generate(model, [Prompts[0]],
            new GenerationOptions { MaxNewTokens = maxNew, Temperature = 0, EosTokenIds = [] }, new Generator(0));
        Assert.Equal(direct.Tokens[0], alone[0]);

        using var scheduler = new BatchScheduler(model, slots: 4, slotCapacity: 64);
        var recorded = Prompts.Select(_ => new Recorded()).ToArray();
        // Request k + 1 is queued (from the scheduler's own thread) when request k has produced 2k + 1 tokens,
        // so each joins a running batch at a different step; the fifth waits for a slot.
        for (int k = Prompts.Length - 1; k >= 0; k--)
        {
            int next = k + 1;
            Action<int>? join = next < Prompts.Length
                ? count =>
                {
                    if (count == 2 * next - 1) scheduler.Enqueue(pending[next]);
                }
            : null;
            pending[k] = recorded[k].Request(Prompts[k], maxNew, onToken: join);
        }
        scheduler.Enqueue(pending[0]);
        var outcomes = recorded.Select(r => r.Wait()).ToArray();
        for (int k = 0; k < Prompts.Length; k++)
        {
            Assert.Equal(alone[k], outcomes[k].Tokens);
            Assert.Equal(alone[k], recorded[k].Tokens);
            Assert.Equal(FinishReason.Length, outcomes[k].FinishReason);
        }
        Assert.True(alone.Select(a => string.Join(',', a)).Distinct().Count() > 1, "prompts should differ in output");
        var counts = scheduler.SlotCounts;
        Assert.Equal((4, 0), (counts.Slots, counts.InUse));
        Assert.Equal(4, counts.Idle + counts.Free);
        Assert.Equal(Prompts.Length * maxNew, scheduler.Stats.GeneratedTokens);
        Assert.Equal(Prompts.Length, scheduler.Stats.RequestsCompleted);
        Assert.Equal(0, scheduler.Stats.RunningSequences);
        Assert.Equal(0, scheduler.Stats.QueueDepth);
        Assert.Equal(Prompts.Length, scheduler.Stats.TimeToFirstTokenCount);
        // Fewer steps than sequential decoding: the sequences shared steps.
        Assert.True(scheduler.Stats.DecodeSteps < Prompts.Length * (maxNew - 1),
            $"{scheduler.Stats.DecodeSteps} decode steps");
    }

    private readonly SequenceRequest[] pending = new SequenceRequest[Prompts.Length];

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void SampledOutput_WithItsOwnSeed_IsTheSameAloneOrBatched(string fixture)
    {
        using var model = CausalLMRegistry.Load(Fixture(fixture));
        var alone = Prompts.Take(3).Select((p, i) => RunAlone(model, p, 8, temperature: 0.9f, seed: (ulong)(40 + i)))
            .ToArray();
        using var scheduler = new BatchScheduler(model, slots: 3, slotCapacity: 64);
        var recorded = Enumerable.Range(0, 3).Select(_ => new Recorded()).ToArray();
        for (int i = 0; i < 3; i++)
            scheduler.Enqueue(recorded[i].Request(Prompts[i], 8, temperature: 0.9f, seed: (ulong)(40 + i)));
        for (int i = 0; i < 3; i++) Assert.Equal(alone[i], recorded[i].Wait().Tokens);
    }

    [Fact]
    public void Cancellation_EndsTheSequenceWithinAStep_FreesItsSlot_AndTheNextRequestWorks()
    {
        using var model = CausalLMRegistry.Load(Fixture("qwen2-tiny-ref"));
        using var scheduler = new BatchScheduler(model, slots: 2, slotCapacity: 64);
        using var cancel = new CancellationTokenSource();
        var other = new Recorded();
        var cancelled = new Recorded();
        scheduler.Enqueue(other.Request(Prompts[1], 30));
        scheduler.Enqueue(cancelled.Request(Prompts[0], 40, cancel: cancel.Token, onToken: n =>
        {
            if (n == 3) cancel.Cancel();
        }));
        Assert.ThrowsAny<OperationCanceledException>(() => cancelled.Wait());
        // Checked before every step: the token of the step that saw the cancellation is the last one.
        Assert.Equal(3, cancelled.Tokens.Count);
        Assert.Equal(30, other.Wait().Tokens.Length);
        Assert.Equal(0, scheduler.SlotCounts.InUse);
        Assert.Equal(1, scheduler.Stats.RequestsCancelled);

        var next = new Recorded();
        scheduler.Enqueue(next.Request(Prompts[2], 5));
        Assert.Equal(RunAlone(model, Prompts[2], 5), next.Wait().Tokens);
        Assert.Equal(0, scheduler.SlotCounts.InUse);

        // A request cancelled while queued never takes a slot.
        var early = new Recorded();
        scheduler.Enqueue(early.Request(Prompts[3], 5, cancel: new CancellationToken(canceled: true)));
        Assert.ThrowsAny<OperationCanceledException>(() => early.Wait());
        Assert.Empty(early.Tokens);
        Assert.Equal(2, scheduler.Stats.RequestsCancelled);
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void ALaterTurn_ReusesTheCachedPrefix_AndGivesTheSameOutput(string fixture)
    {
        using var model = CausalLMRegistry.Load(Fixture(fixture));
        using var scheduler = new BatchScheduler(model, slots: 2, slotCapacity: 64);
        var first = new Recorded();
        scheduler.Enqueue(first.Request(Prompts[0], 6));
        var turn1 = first.Wait();
        Assert.Equal(0, turn1.CachedTokens);
        Assert.Equal((1, 0), (scheduler.SlotCounts.Idle, scheduler.SlotCounts.InUse));

        // The next turn: the first prompt, the answer, a new message. The slot holds the prompt and all but the last
        // answer token (the last was sampled, never fed).
        long[] turn2Prompt = [.. Prompts[0], .. turn1.Tokens, 9, 9, 4];
        var second = new Recorded();
        scheduler.Enqueue(second.Request(turn2Prompt, 6));
        var turn2 = second.Wait();
        Assert.Equal(Prompts[0].Length + turn1.Tokens.Length - 1, turn2.CachedTokens);
        Assert.Equal(turn2.CachedTokens, scheduler.Stats.CachedPromptTokens);
        Assert.Equal(RunAlone(model, turn2Prompt, 6), turn2.Tokens);

        // An unrelated prompt takes the free slot, not the cached one; a continuation of it reuses its slot.
        var unrelated = new Recorded();
        scheduler.Enqueue(unrelated.Request(Prompts[2], 3));
        Assert.Equal(0, unrelated.Wait().CachedTokens);
        Assert.Equal((2, 0, 0), (scheduler.SlotCounts.Idle, scheduler.SlotCounts.Free, scheduler.SlotCounts.InUse));
        var shared = new Recorded();
        scheduler.Enqueue(shared.Request([.. Prompts[2], 1], 3));
        Assert.Equal(Prompts[2].Length, shared.Wait().CachedTokens);
        Assert.Equal(RunAlone(model, [.. Prompts[2], 1], 3), shared.Tokens);
    }

    [Fact]
    public void EosAndSlotCapacity_EndSequences_AndBadRequestsFailClearly()
    {
        using var model = CausalLMRegistry.Load(Fixture("qwen2-tiny-ref"));
        var greedy = RunAlone(model, Prompts[0], 6);
        using var scheduler = new BatchScheduler(model, slots: 1, slotCapacity: 10);
        var eos = new Recorded();
        scheduler.Enqueue(eos.Request(Prompts[0], 6, eos: [greedy[2]]));
        var outcome = eos.Wait();
        Assert.Equal(FinishReason.Eos, outcome.FinishReason);
        Assert.Equal(greedy[..(Array.IndexOf(greedy, greedy[2]) + 1)], outcome.Tokens);
        // 7 prompt tokens in a 10-position slot: 3 more positions are fed, so 4 tokens come out.
        var full = new Recorded();
        scheduler.Enqueue(full.Request(Prompts[0], 50));
        var filled = full.Wait();
        Assert.Equal(4, filled.Tokens.Length);
        Assert.Equal(FinishReason.Length, filled.FinishReason);
        var e = Assert.Throws<ArgumentException>(() => scheduler.Enqueue(new Recorded().Request(Prompts[3], 5)));
        Assert.Contains("fills a sequence slot of 10 positions", e.Message);
        e = Assert.Throws<ArgumentException>(() => new Recorded().Request([], 5));
        Assert.Contains("at least one prompt token", e.Message);
        e = Assert.Throws<ArgumentException>(() => new Recorded().Request([1], 0));
        Assert.Contains("max new tokens must be ≥ 1, got 0", e.Message);
        scheduler.Dispose();
        Assert.Throws<ObjectDisposedException>(() => scheduler.Enqueue(new Recorded().Request([1], 1)));
    }

    [Fact]
    public void Dispose_CancelsRunningAndQueuedRequests()
    {
        using var model = CausalLMRegistry.Load(Fixture("deepseek-v3-tiny-yarn"));
        var scheduler = new BatchScheduler(model, slots: 1, slotCapacity: 64);
        var started = new ManualResetEventSlim();
        var disposing = new ManualResetEventSlim();
        var running = new Recorded();
        var queued = new Recorded();
        // The decode is held at its first token until Dispose is under way and then slowed, so the request is still
        // running when the scheduler sees the stop: a tiny model can emit all 50 tokens between two time slices of
        // the test thread, and the request then ends normally.
        scheduler.Enqueue(running.Request(Prompts[0], 50, onToken: _ =>
        {
            started.Set();
            disposing.Wait(Timeout);
            Thread.Sleep(20);
        }));
        scheduler.Enqueue(queued.Request(Prompts[1], 50));
        Assert.True(started.Wait(Timeout));
        disposing.Set();
        scheduler.Dispose();
        Assert.ThrowsAny<OperationCanceledException>(() => running.Wait());
        Assert.ThrowsAny<OperationCanceledException>(() => queued.Wait());
        Assert.InRange(running.Tokens.Count, 1, 49);
    }
}
