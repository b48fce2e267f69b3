using System.Text.Json;
using NativeReasoner.Cli;
using NativeReasoner.Model;
using NativeReasoner.Nn;
using NativeReasoner.RL;
using Xunit;

namespace NativeReasoner.Tests.RL;

/// <summary>
/// A policy whose next token is a function of the row so far (prompt + generated): logits are one-hot (10 on
/// the scripted token), so greedy and sampling alike follow the script.
/// </summary>
internal sealed class ScriptedLogitsPolicy(int vocab, Func<IReadOnlyList<long>, long> next) : IPolicy
{
    public int VocabSize => vocab;

    // ids [B, T] → logits [B, T, V]
    public Tensor Logits(Tensor inputIds)
    {
        int b = inputIds.Shape[0], t = inputIds.Shape[1];
        var ids = inputIds.ToInt64Array();
        var logits = new float[b * t * vocab];
        for (int r = 0; r < b; r++)
            for (int p = 0; p < t; p++)
                logits[(r * t + p) * vocab + next(ids.AsSpan(r * t, p + 1).ToArray())] = 10f;
        return Tensor.FromArray(logits, b, t, vocab);
    }

    public IEnumerable<Parameter> Parameters() => [];

    public IReadOnlyList<SampledSequence> Generate(IReadOnlyList<long[]> prompts, GenerationOptions options, Generator rng) =>
        Sampling.GenerateByRecompute(this, prompts, options, rng);
}

/// <summary>Budget forcing (s1): the cap forces &lt;/think&gt; at the budget, "Wait" replaces an early end.</summary>
public sealed class ThinkingBudgetTests
{
    private const long Think = 1, EndThink = 2, Wait = 3, Eos = 4, Word = 5, Answer = 6;
    private const int Vocab = 8;

    /// <summary>
    /// Opens thinking, thinks some words (a number read from the prompt's first token; again after each "Wait"),
    /// closes, answers, then EOS — reading how far it
    /// is from the tokens it sees, so a forced token changes what it does next (like a model would).
    /// </summary>
    private static Func<IReadOnlyList<long>, long> Thinker(Func<long, int> thinkLengthOfPrompt) => seq =>
    {
        int thinkLength = thinkLengthOfPrompt(seq[0]);
        if (!seq.Contains(Think)) return Think;
        if (seq.Contains(EndThink)) return seq[^1] == Answer ? Eos : Answer;
        // Words since thinking opened or was last extended.
        int last = seq.ToList().FindLastIndex(t => t == Think || t == Wait);
        return seq.Count - 1 - last >= thinkLength ? EndThink : Word;
    };

    private static GenerationOptions Greedy(ThinkingBudget? budget, int maxNew = 40) => new()
    {
        MaxNewTokens = maxNew, Temperature = 0, EosTokenIds = [Eos], ThinkingBudget = budget,
    };

    private static ThinkingBudget Budget(int? max, int extensions = 0, long[]? end = null) => new()
    {
        MaxThinkingTokens = max, ThinkEndIds = end ?? [EndThink], ThinkStartIds = [Think],
        ExtensionIds = [Wait], MaxExtensions = extensions,
    };

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(7)]
    public void ForcedEndAppearsExactlyAtTheBudget(int b)
    {
        var policy = new ScriptedLogitsPolicy(Vocab, Thinker(_ => 20));
        var tokens = policy.Generate([[7]], Greedy(Budget(b)), new Generator(0))[0].Tokens;
        // <think>, b words, the forced </think>, the answer, EOS.
        long[] expected = [Think, .. Enumerable.Repeat(Word, b), EndThink, Answer, Eos];
        Assert.Equal(expected, tokens);
    }

    [Fact]
    public void UnderTheBudgetTheModelsOwnEndIsKept()
    {
        var policy = new ScriptedLogitsPolicy(Vocab, Thinker(_ => 3));
        var tokens = policy.Generate([[7]], Greedy(Budget(10)), new Generator(0))[0].Tokens;
        Assert.Equal([Think, Word, Word, Word, EndThink, Answer, Eos], tokens);
    }

    [Fact]
    public void ExtensionReplacesAnEarlyEndUpToMaxExtensions()
    {
        var policy = new ScriptedLogitsPolicy(Vocab, Thinker(_ => 2));
        var tokens = policy.Generate([[7]], Greedy(Budget(null, extensions: 2)), new Generator(0))[0].Tokens;
        // Two early ends become "Wait" and thinking goes on; the third end is kept.
        long[] expected = [Think, Word, Word, Wait, Word, Word, Wait, Word, Word, EndThink, Answer, Eos];
        Assert.Equal(expected, tokens);
    }

    [Fact]
    public void ExtensionStopsAtTheCap()
    {
        var policy = new ScriptedLogitsPolicy(Vocab, Thinker(_ => 2));
        var tokens = policy.Generate([[7]], Greedy(Budget(4, extensions: 5)), new Generator(0))[0].Tokens;
        // Wait counts as thinking: words 2 + Wait 1 + word 1 = 4 thinking tokens, then the forced end.
        Assert.Equal([Think, Word, Word, Wait, Word, EndThink, Answer, Eos], tokens);
    }

    [Fact]
    public void MultiTokenEndIsForcedWhole()
    {
        const long Slash = 7;
        var policy = new ScriptedLogitsPolicy(Vocab, Thinker(_ => 20));
        var tokens = policy.Generate([[7]], Greedy(Budget(3, end: [Slash, EndThink])), new Generator(0))[0].Tokens;
        Assert.Equal([Think, Word, Word, Word, Slash, EndThink, Answer, Eos], tokens);
    }

    [Fact]
    public void RowsOfABatchAreIndependent()
    {
        // The prompt's token sets how many words the row thinks on its own: 1, 5, 2.
        var policy = new ScriptedLogitsPolicy(Vocab, Thinker(first => first switch { 0 => 1, 5 => 5, _ => 2 }));
        long[][] prompts = [[0], [5], [7]];
        var budget = Budget(3, extensions: 1);
        var batch = policy.Generate(prompts, Greedy(budget), new Generator(0));
        for (int i = 0; i < prompts.Length; i++)
            Assert.Equal(policy.Generate([prompts[i]], Greedy(budget), new Generator(0))[0].Tokens, batch[i].Tokens);
        // Row 0 is extended once and capped; row 1 is capped; row 2 is extended once, reaching the cap with "Wait".
        Assert.Equal([Think, Word, Wait, Word, EndThink, Answer, Eos], batch[0].Tokens);
        Assert.Equal([Think, Word, Word, Word, EndThink, Answer, Eos], batch[1].Tokens);
        Assert.Equal([Think, Word, Word, Wait, EndThink, Answer, Eos], batch[2].Tokens);
    }

    [Fact]
    public void WithoutThinkStartIdsCountingStartsAtTheFirstToken()
    {
        var policy = new ScriptedLogitsPolicy(Vocab, seq => seq.Contains(EndThink) ? Eos : Word);
        var budget = new ThinkingBudget { MaxThinkingTokens = 2, ThinkEndIds = [EndThink] };
        Assert.Equal([Word, Word, EndThink, Eos], policy.Generate([[7]], Greedy(budget), new Generator(0))[0].Tokens);
    }

    [Fact]
    public void BadSettingsAreClearErrors()
    {
        var e = Assert.Throws<ArgumentException>(() => Budget(-1).Start(1));
        Assert.Contains("≥ 0", e.Message);
        e = Assert.Throws<ArgumentException>(() => new ThinkingBudget { ThinkEndIds = [] }.Start(1));
        Assert.Contains("end-of-thinking", e.Message);
        e = Assert.Throws<ArgumentException>(() =>
            new ThinkingBudget { ThinkEndIds = [EndThink], MaxExtensions = 2 }.Start(1));
        Assert.Contains("extension tokens", e.Message);
    }

    private static DeepseekV3ForCausalLM Golden() =>
        DeepseekV3Checkpoint.Load(NativeReasoner.Tests.Model.ModelTestUtil.Fixture("deepseek-v3-tiny-yarn"));

    [Fact]
    public void CachedDecoderForcesAtTheBudgetAndFeedsTheForcedTokenBack()
    {
        using var m = Golden();
        long[][] prompts = [[5, 17, 33, 2, 9], [7, 3], [12, 70, 44]];
        var plain = new GenerationOptions { MaxNewTokens = 8, Temperature = 0, EosTokenIds = [] };
        var unbudgeted = TextGeneration.Generate(m, prompts, plain, new Generator(1));
        // A forced "end" id the model is unlikely to pick on its own at step 3.
        const long End = 11;
        var budget = new ThinkingBudget { MaxThinkingTokens = 3, ThinkEndIds = [End] };
        var cached = TextGeneration.Generate(m, prompts, plain with { ThinkingBudget = budget }, new Generator(1));
        var recompute = Sampling.GenerateByRecompute(
            new CausalLMPolicy(m), prompts, plain with { ThinkingBudget = budget }, new Generator(1));
        for (int i = 0; i < prompts.Length; i++)
        {
            var t = cached.Tokens[i];
            Assert.Equal(unbudgeted.Tokens[i][..3], t[..3]);
            Assert.Equal(End, t[3]);
            // After the forced token the cache holds it: the continuation equals a full-forward recompute.
            Assert.Equal(recompute[i].Tokens, t);
        }
    }

    [Fact]
    public void UnbudgetedPathIsUnchanged()
    {
        using var m = Golden();
        long[][] prompts = [[5, 17, 33, 2, 9], [7, 3]];
        var sampled = new GenerationOptions { MaxNewTokens = 8, Temperature = 0.8f, TopP = 0.9f, EosTokenIds = [] };
        var a = TextGeneration.Generate(m, prompts, sampled, new Generator(9));
        // A budget that never triggers (no cap, no extension, an end id never reached) changes nothing.
        var never = new ThinkingBudget { ThinkEndIds = [-1] };
        var b = TextGeneration.Generate(m, prompts, sampled with { ThinkingBudget = never }, new Generator(9));
        for (int i = 0; i < prompts.Length; i++) Assert.Equal(a.Tokens[i], b.Tokens[i]);
    }

    [Fact]
    public void EvalCommandReportsEachBudgetAndRefusesBadBudgets()
    {
        var dir = GenerateEvalTests.ModelDir();
        try
        {
            string report = Path.Combine(dir, "eval.json"), plot = Path.Combine(dir, "tts.png");
            Assert.Equal(0, Program.Main([
                "eval", "--model", dir, "--task", "arithmetic", "--n", "5", "--max-new-tokens", "6",
                "--thinking-budget", "0,2", "--samples", "2", "--out", report, "--plot", plot, "--json"]));
            var tts = JsonDocument.Parse(File.ReadAllText(report)).RootElement.GetProperty("test_time_scaling");
            var budgets = tts.GetProperty("budgets").EnumerateArray().ToArray();
            Assert.Equal([0, 2], budgets.Select(b => b.GetProperty("thinking_budget").GetInt32()));
            foreach (var b in budgets)
            {
                Assert.InRange(b.GetProperty("mean_thinking_tokens").GetDouble(),
                    0, b.GetProperty("thinking_budget").GetInt32());
                Assert.InRange(b.GetProperty("greedy").GetProperty("accuracy").GetDouble(), 0, 1);
                Assert.Equal(2, b.GetProperty("sampled").GetProperty("samples").GetInt32());
            }
            Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(plot)[..4]);
            // Option values out of range or unparsable are usage errors (exit 2).
            Assert.Equal(2, Program.Main(["eval", "--model", dir, "--task", "arithmetic", "--thinking-budget", "4,x"]));
            Assert.Equal(2, Program.Main(["eval", "--model", dir, "--task", "arithmetic", "--max-extensions", "1"]));
            Assert.Equal(2, Program.Main(["eval", "--model", dir, "--task", "arithmetic", "--thinking-budget", "-3"]));
        }
        finally { Directory.Delete(dir, true); }
    }
}
