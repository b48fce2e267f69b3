using System.Diagnostics;
using NativeReasoner.Kernels.Memory;
using NativeReasoner.Model;
using NativeReasoner.RL;
using NativeReasoner.Tests.Verification;
using Xunit;
using Xunit.Abstractions;

namespace NativeReasoner.Tests.Reliability;

/// <summary>
/// No leaks over long runs: 1,000 SFT training steps and 1,000 generate calls on a tiny DeepSeek-V3 (MLA + MoE)
/// leave the engine's native allocation counters (the pool's live and cached bytes, unpooled live bytes) exactly
/// where they were after warm-up, and the managed heap within a small bound. The counters are process-wide, so these
/// run in the non-parallel collection. <c>NR_LEAK_CURVE=path</c> also writes the counters and the resident set
/// every 50 iterations as CSV (the figures in docs/reliability.md).
/// </summary>
[Collection(nameof(LiveBytesCollection))]
public class LeakTests(ITestOutputHelper output)
{
    /// <summary>1,000; <c>NR_LEAK_ITERATIONS</c> runs longer for a recorded curve.</summary>
    private static readonly int Iterations =
        int.TryParse(Environment.GetEnvironmentVariable("NR_LEAK_ITERATIONS"), out var n) && n > 1000 ? n : 1000;
    /// <summary>
    /// Iterations before the counters are taken: the pool caches one block per size class it has seen, and batches of
    /// varying lengths keep showing it new ones for a while (the inputs are seeded, so the point is fixed).
    /// </summary>
    private const int WarmUp = 100;
    private const int Every = 50;
    /// <summary>Managed heap growth allowed after a full collection (JIT tiering, caches of the test host).</summary>
    private const long ManagedSlackBytes = 16L << 20;

    /// <summary>Committed: what the GC holds from the system (the heap's share of the resident set).</summary>
    private readonly record struct Sample(int Iteration, long Live, long Cached, long Unpooled, long Managed,
        long Committed, long Resident);

    private static Sample Measure(int iteration)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var self = Process.GetCurrentProcess();
        return new Sample(iteration, BufferPool.Shared.LiveBytes, BufferPool.Shared.CachedBytes,
            NativeBuffer.UnpooledLiveBytes, GC.GetTotalMemory(forceFullCollection: true),
            GC.GetGCMemoryInfo().TotalCommittedBytes, self.WorkingSet64);
    }

    private static ModelBundle TinyBundle()
    {
        var tok = new CharTokenizer();
        var config = DeepseekV3Config.Preset("tiny") with
        {
            VocabSize = Math.Max(64, tok.VocabSize),
            MaxPositionEmbeddings = 128,
        };
        return ModelBundle.Create(new DeepseekV3ForCausalLM(config, new Generator(5)), tok, PromptTemplate.Default);
    }

    /// <summary>Runs <paramref name="iteration"/> 1,000 times and checks the counters after warm-up.</summary>
    private void AssertFlat(string what, Action<int> iteration)
    {
        for (int i = 0; i < WarmUp; i++) iteration(i);
        var start = Measure(WarmUp);
        var curve = new List<Sample> { start };
        for (int i = WarmUp; i < Iterations; i++)
        {
            iteration(i);
            if ((i + 1) % Every == 0) curve.Add(Measure(i + 1));
        }
        foreach (var s in curve)
            output.WriteLine($"{what} {s.Iteration,5}: pool live {s.Live,10:N0} B, cached {s.Cached,10:N0} B, " +
                             $"unpooled {s.Unpooled,8:N0} B, managed {s.Managed,12:N0} B, " +
                             $"GC committed {s.Committed / 1048576.0,6:F1} MiB, " +
                             $"resident {s.Resident / 1048576.0,7:F1} MiB");
        if (Environment.GetEnvironmentVariable("NR_LEAK_CURVE") is { Length: > 0 } path)
        {
            bool header = !File.Exists(path);
            const string Header = "what,iteration,pool_live_bytes,pool_cached_bytes,unpooled_bytes,managed_bytes," +
                                  "gc_committed_bytes,resident_bytes";
            var rows = curve.Select(s =>
                $"{what},{s.Iteration},{s.Live},{s.Cached},{s.Unpooled},{s.Managed},{s.Committed},{s.Resident}");
            File.AppendAllLines(path, header ? rows.Prepend(Header) : rows);
        }
        foreach (var s in curve)
        {
            string At(string counter, long now, long then) =>
                $"{what}: {counter} {now:N0} at {s.Iteration}, {then:N0} after warm-up";
            Assert.True(s.Live == start.Live, At("pool live bytes", s.Live, start.Live));
            Assert.True(s.Cached == start.Cached, At("pool cached bytes", s.Cached, start.Cached));
            Assert.True(s.Unpooled == start.Unpooled, At("unpooled bytes", s.Unpooled, start.Unpooled));
        }
        long managedGrowth = curve[^1].Managed - start.Managed;
        Assert.True(managedGrowth < ManagedSlackBytes, $"{what}: the managed heap grew by {managedGrowth:N0} bytes");
    }

    [Fact]
    public void ThousandTrainingSteps_KeepTheAllocationCountersFlat()
    {
        using var b = TinyBundle();
        var task = new ArithmeticTask();
        using var trainer = new SftTrainer(b.Policy, b.Tokenizer, b.Template, 1e-3f, Iterations, weightDecay: 0.01f);
        b.Policy.Model.Train();
        float last = float.NaN;
        // A new batch each step (lengths vary, so the shapes do too), as in pre-training.
        AssertFlat("train", i => last = trainer.Step(task.Generate(Split.Train, 4, (ulong)i)
            .Select(p => ThinkTraces.Example(p, think: i % 2 == 0)).ToArray()));
        Assert.True(float.IsFinite(last), $"training diverged: loss {last}");
    }

    [Fact]
    public void ThousandGenerateCalls_KeepTheAllocationCountersFlat()
    {
        using var b = TinyBundle();
        var task = new ArithmeticTask();
        var rng = new Generator(9);
        var options = new GenerationOptions { MaxNewTokens = 8, Temperature = 1f, EosTokenIds = [b.Tokenizer.EosId] };
        long tokens = 0;
        // Prompts of varying length, batches of 1 to 3, sampled: the serving pattern of `nr generate` and GRPO.
        AssertFlat("generate", i =>
        {
            var prompts = task.Generate(Split.Test, 1 + i % 3, (ulong)i)
                .Select(p => b.Tokenizer.Encode(b.Template.Format(p.Prompt)).Select(t => (long)t).ToArray()).ToArray();
            tokens += b.Policy.Generate(prompts, options, rng).Sum(s => s.Tokens.Length);
        });
        Assert.True(tokens > Iterations, $"only {tokens} tokens generated");
    }
}
