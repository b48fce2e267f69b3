using System.Text.Json;
using NativeReasoner.Model;
using NativeReasoner.RL;
using Xunit;

namespace NativeReasoner.Tests.RL;

/// <summary>Rewards the share of digit characters: something a bigram model can learn in a few GRPO steps.</summary>
internal sealed class SevensReward : IRewardFunction
{
    public string Name => "sevens";

    public float? Score(RewardInput input) => input.Completion.Length == 0 ? 0f : (float)input.Completion.Count(char.IsAsciiDigit) / input.Completion.Length;
}

public class TrainerTests
{
    private static string TempDir()
    {
        var d = Path.Combine(Path.GetTempPath(), "nr-rl-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }

    [Fact]
    public void Grpo_EndToEnd_RewardRises_AndEveryMetricIsLogged()
    {
        var dir = TempDir();
        try
        {
            var tok = new CharTokenizer();
            using var policy = new UnigramPolicy(tok.VocabSize);
            using var reference = new UnigramPolicy(tok.VocabSize);
            var task = TaskRegistry.Create("arithmetic");
            var rewards = new RewardSet().Add(new SevensReward()).Add(new FormatReward(), 0.1f).Add(new AccuracyReward(task), 1f);
            var config = new GrpoConfig
            {
                NumGenerations = 4, PromptsPerStep = 2, NumIterations = 2, MaxCompletionLength = 8,
                LossType = LossType.Dapo, Beta = 0.01f, EpsilonLow = 0.2f, EpsilonHigh = 0.28f, MaskTruncatedCompletions = false,
                LearningRate = 0.1f, WarmupSteps = 0, TotalSteps = 30, EvalEvery = 10, EvalProblems = 8, Seed = 3,
            };
            var metricsPath = Path.Combine(dir, "metrics.jsonl");
            var history = new List<IReadOnlyList<KeyValuePair<string, double>>>();
            using (var trainer = new GrpoTrainer(policy, reference, tok, task, rewards, PromptTemplate.Default, config, metricsPath))
                for (int i = 0; i < 30; i++) history.Add(trainer.Step());

            var lines = File.ReadAllLines(metricsPath);
            Assert.Equal(30, lines.Length);
            var first = JsonDocument.Parse(lines[0]).RootElement;
            foreach (var key in new[] { "step", "reward", "reward_std", "rewards/sevens/mean", "rewards/sevens/std", "rewards/format/mean", "rewards/accuracy/mean",
                         "frac_reward_zero_std", "completions/mean_length", "completions/max_length", "completions/clipped_ratio", "loss", "kl", "entropy",
                         "clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean", "grad_norm", "learning_rate", "step_time", "tokens_per_second", "num_tokens" })
                Assert.True(first.TryGetProperty(key, out _), $"metrics.jsonl lacks {key}: {lines[0]}");
            var tenth = JsonDocument.Parse(lines[9]).RootElement;
            Assert.True(tenth.TryGetProperty("eval/accuracy", out _));
            Assert.True(tenth.TryGetProperty("eval/accuracy/level_1", out _));

            double Reward(int i) => history[i].First(kv => kv.Key == "rewards/sevens/mean").Value;
            double early = Enumerable.Range(0, 5).Average(Reward), late = Enumerable.Range(25, 5).Average(Reward);
            Console.WriteLine($"GRPO stand-in: digit share {early:F3} (steps 1-5) -> {late:F3} (steps 26-30)");
            Assert.True(late > early + 0.2, $"sevens reward did not rise: {early:F3} → {late:F3}");
            // μ = 2: the second pass sees moved weights, so ratios leave 1 and the KL to the reference grows.
            Assert.Contains(history, h => h.First(kv => kv.Key == "kl").Value > 0);
            Assert.All(history, h => Assert.True(double.IsFinite(h.First(kv => kv.Key == "grad_norm").Value)));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Grpo_MuOne_RatioIsOne_NoClipping()
    {
        var tok = new CharTokenizer();
        using var policy = new BigramPolicy(tok.VocabSize, seed: 2);
        var task = new ArithmeticTask();
        var config = new GrpoConfig { NumGenerations = 3, PromptsPerStep = 2, MaxCompletionLength = 5, LossType = LossType.Grpo, LearningRate = 0.1f, Seed = 1, EpsilonLow = 0.01f };
        using var trainer = new GrpoTrainer(policy, null, tok, task, new RewardSet().Add(new SevensReward()), PromptTemplate.Default, config);
        for (int i = 0; i < 3; i++)
        {
            var m = trainer.Step();
            Assert.Equal(0.0, m.First(kv => kv.Key == "clip_ratio/region_mean").Value);
            Assert.DoesNotContain(m, kv => kv.Key == "kl");
        }
        Assert.Throws<ArgumentException>(() => new GrpoTrainer(policy, null, tok, task, new RewardSet(), PromptTemplate.Default, config with { Beta = 0.1f }));
        Assert.Throws<ArgumentException>(() => new GrpoTrainer(policy, null, tok, task, new RewardSet(), PromptTemplate.Default, config with { NumGenerations = 1 }));
    }

    [Fact]
    public void Rollout_LogProbs_MatchTheBigramByHand()
    {
        using var scope = new TensorScope();
        using var policy = new BigramPolicy(6, seed: 5);
        var table = policy.Table.Weight.ToArray();
        double LogP(long prev, long next, float temp)
        {
            var row = Enumerable.Range(0, 6).Select(v => table[prev * 6 + v] / (double)temp).ToArray();
            double max = row.Max(), lse = max + Math.Log(row.Sum(x => Math.Exp(x - max)));
            return row[next] - lse;
        }
        // Two groups of G = 2 with different prompt lengths and completion lengths.
        long[][] prompts = [[1, 2, 3], [4]];
        SampledSequence S(params long[] t) => new(t, t[^1] == 0 ? FinishReason.Eos : FinishReason.Length);
        var samples = new[] { S(5, 0), S(2, 2, 0), S(3), S(1, 4, 5, 0) };
        var batch = new RolloutBatch(prompts, samples, 2);
        Assert.Equal(4, batch.MaxCompletion);
        var ent = new float[4 * 4];
        var lp = batch.LogProbs(policy, 0.7f, ent).ToArray();
        var mask = batch.MaskTensor(maskTruncated: true).ToArray();
        for (int i = 0; i < 4; i++)
        {
            var prompt = prompts[i / 2];
            var seq = prompt.Concat(samples[i].Tokens).ToArray();
            for (int t = 0; t < 4; t++)
            {
                if (t >= samples[i].Tokens.Length) { Assert.Equal(0f, lp[i * 4 + t]); Assert.Equal(0f, mask[i * 4 + t]); continue; }
                Assert.Equal(LogP(seq[prompt.Length + t - 1], seq[prompt.Length + t], 0.7f), lp[i * 4 + t], 5);
                Assert.True(ent[i * 4 + t] > 0);
                Assert.Equal(samples[i].Truncated ? 0f : 1f, mask[i * 4 + t]);
            }
        }
    }

    [Fact]
    public void Sampler_StopsAtEos_RespectsLimit_IsSeeded()
    {
        var tok = new CharTokenizer();
        using var policy = new BigramPolicy(tok.VocabSize, seed: 4);
        var options = new GenerationOptions { MaxNewTokens = 7, Temperature = 1f, EosTokenIds = [tok.EosId] };
        long[][] prompts = [[1, 10, 11], [1, 10, 11], [1, 12]];
        var a = policy.Generate(prompts, options, new Generator(9));
        var b = policy.Generate(prompts, options, new Generator(9));
        Assert.Equal(a.Select(s => s.Tokens), b.Select(s => s.Tokens));
        Assert.All(a, s =>
        {
            Assert.InRange(s.Tokens.Length, 1, 7);
            Assert.Equal(s.Tokens[^1] == tok.EosId, !s.Truncated);
            Assert.Equal(s.Truncated, s.Tokens.Length == 7 && s.Tokens[^1] != tok.EosId);
        });
        // Greedy follows the argmax chain.
        var greedy = policy.Generate([[1L]], options with { Temperature = 0f }, new Generator(0))[0];
        var table = policy.Table.Weight.ToArray();
        int V = tok.VocabSize;
        long prev = 1;
        foreach (var t in greedy.Tokens)
        {
            long best = Enumerable.Range(0, V).MaxBy(v => table[prev * V + v]);
            Assert.Equal(best, t);
            prev = t;
        }
    }

    [Fact]
    public void Sft_LossCountsCompletionTokensOnly_AndTrainingFitsTheData()
    {
        var tok = new CharTokenizer();
        using var policy = new BigramPolicy(tok.VocabSize, seed: 6);
        using (var scope = new TensorScope())
        {
            // Changing the prompt's own tokens' targets must not matter: only completion positions count.
            var table = policy.Table.Weight.ToArray();
            int V = tok.VocabSize;
            long[] p = [1, 20, 21], c = [22, 2];
            double manual = 0;
            long[] seq = [.. p, .. c];
            for (int t = p.Length; t < seq.Length; t++)
            {
                var row = Enumerable.Range(0, V).Select(v => (double)table[seq[t - 1] * V + v]).ToArray();
                double max = row.Max(), lse = max + Math.Log(row.Sum(x => Math.Exp(x - max)));
                manual += lse - row[seq[t]];
            }
            manual /= c.Length;
            var loss = SftLoss.Compute(policy, [(p, c), (new long[] { 1 }, new long[] { 2 })]).Item();
            var single = SftLoss.Compute(policy, [(p, c)]).Item();
            Assert.Equal(manual, single, 4);
            Assert.NotEqual(single, loss);
        }
        var data = new[] { new SftExample("7", "<think>x</think>\\boxed{7}") };
        using var trainer = new SftTrainer(policy, tok, new PromptTemplate("<|bos|>{question}="), learningRate: 0.3f, totalSteps: 60);
        float firstLoss = trainer.Step(data);
        float lastLoss = firstLoss;
        for (int i = 0; i < 59; i++) lastLoss = trainer.Step(data);
        Assert.True(lastLoss < firstLoss * 0.5f, $"SFT loss {firstLoss} → {lastLoss}");
    }

    [Fact]
    public void RejectionSampling_KeepsVerifiedCorrect_WritesJsonl()
    {
        var dir = TempDir();
        try
        {
            var tok = new CharTokenizer();
            var task = new ArithmeticTask();
            var problems = task.Generate(Split.Train, 4, seed: 2, difficulty: 2);
            // Sample k of problem i: every third sample is right and well formed, one is right but unformatted.
            int call = 0;
            var policy = new ScriptedPolicy(tok, k =>
            {
                var p = problems[call++ / 3];
                return (k % 3) switch
                {
                    0 => $"<think>compute</think> \\boxed{{{p.Answer}}}",
                    1 => $"\\boxed{{{p.Answer}}}",
                    _ => "<think>guess</think> \\boxed{-1}",
                };
            });
            var outPath = Path.Combine(dir, "sft.jsonl");
            var result = RejectionSampling.Run(policy, tok, PromptTemplate.Default, task, problems, 3,
                new GenerationOptions { MaxNewTokens = 40, EosTokenIds = [tok.EosId] }, new Generator(0), outPath);
            Assert.Equal(12, result.Sampled);
            Assert.Equal(4, result.ProblemsSolved);
            var back = SftData.ReadJsonl(outPath);
            Assert.Equal(4, back.Count);
            Assert.All(back, e => Assert.StartsWith("<think>", e.Completion));
            Assert.Equal(problems.Select(p => p.Prompt), back.Select(e => e.Prompt));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Jsonl_And_Metrics_Errors()
    {
        var dir = TempDir();
        try
        {
            var path = Path.Combine(dir, "bad.jsonl");
            File.WriteAllText(path, "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"a\"\n");
            var ex = Assert.Throws<InvalidDataException>(() => SftData.ReadJsonl(path));
            Assert.Contains("bad.jsonl:2", ex.Message);
            File.WriteAllText(path, "{\"prompt\": \"a\"}\n");
            Assert.Contains("missing \"completion\"", Assert.Throws<InvalidDataException>(() => SftData.ReadJsonl(path)).Message);
            Assert.Equal("{\"a\": 1.5, \"b\": null}", MetricsLogger.ToJson([new("a", 1.5), new("b", double.NaN)]));
        }
        finally { Directory.Delete(dir, true); }
    }
}
