using System.Text.Json;
using NativeReasoner.RL;
using Xunit;

namespace NativeReasoner.Tests.RL.Behaviour;

/// <summary>
/// The ladder's unseen level 6 (never drawn for training), the R1-Zero pre-training corpus (no &lt;think&gt; answer,
/// worked steps only as plain documents), and both in a toy <c>nr train</c> run's summary; the trainer logs the
/// behaviour metrics of its rollouts and held-out evaluations.
/// </summary>
public class UnseenLevelAndR1ZeroTests
{
    [Fact]
    public void UnseenLevelIsTwoDigitTimesTwoDigitAndNeverDrawnForTraining()
    {
        var ladder = new LadderTask();
        var unseen = ladder.GenerateUnseen(Split.Test, 40, seed: 1);
        Assert.Equal(40, unseen.Count);
        foreach (var p in unseen)
        {
            var ab = p.Key.Split('*').Select(long.Parse).ToArray();
            Assert.Equal(LadderTask.UnseenLevel, p.Difficulty);
            Assert.InRange(ab[0], 11, 99);
            Assert.InRange(ab[1], 11, 99);
            Assert.Equal((ab[0] * ab[1]).ToString(), p.Answer);
            Assert.Equal($"What is {ab[0]} * {ab[1]}?", p.Prompt);
            Assert.True(VerifiableTask.IsHeldOut(p.Key));
        }
        Assert.Equal(unseen.Select(p => p.Key), ladder.GenerateUnseen(Split.Test, 40, seed: 1).Select(p => p.Key));
        Assert.All(ladder.GenerateUnseen(Split.Train, 20, seed: 1), p => Assert.False(VerifiableTask.IsHeldOut(p.Key)));
        // Training draws levels 1..5 only, and no training problem multiplies two two-digit numbers.
        Assert.Throws<ArgumentOutOfRangeException>(() => ladder.Generate(Split.Train, 1, 0, LadderTask.UnseenLevel));
        var train = new TrainSettings { PretrainBatch = 64 };
        for (int step = 0; step < 5; step++)
            Assert.All(PretrainCorpus.Batch(ladder, train, step), e =>
                Assert.InRange(e.Difficulty ?? 0, 1, ladder.MaxDifficulty));
    }

    [Fact]
    public void DefaultCorpusMixesThinkAnswersAndR1ZeroCorpusHasNone()
    {
        var ladder = new LadderTask();
        var s = new TrainSettings { PretrainBatch = 64 };
        var plain = PretrainCorpus.Batch(ladder, s, 7);
        var zero = PretrainCorpus.Batch(ladder, s with { R1Zero = true }, 7);
        Assert.Equal(64, zero.Length);
        int thinking = plain.Count(e => e.Completion.Contains(CharTokenizer.ThinkStart));
        // ThinkFraction 0.45 of 64: some of each kind.
        Assert.InRange(thinking, 10, 54);
        Assert.All(zero, e => Assert.DoesNotContain("<think>", e.Completion + e.Prompt));
        Assert.All(zero, e => Assert.DoesNotContain("</think>", e.Completion + e.Prompt));
        var worked = zero.Where(e => e.Prompt == PretrainCorpus.WorkedStepsPrompt).ToArray();
        // The same draws: each think answer of the default corpus is a plain worked-steps document here.
        Assert.Equal(thinking, worked.Length);
        Assert.All(worked, e =>
        {
            Assert.DoesNotContain("\\boxed", e.Completion);
            Assert.Contains("=", e.Completion);
            Assert.Null(e.Answer);
        });
        for (int i = 0; i < plain.Length; i++)
            if (plain[i].Completion.Contains(CharTokenizer.ThinkStart))
                Assert.Contains(zero[i].Completion, plain[i].Completion);
            else Assert.Equal(plain[i], zero[i]);
        // Questions are always answered directly.
        Assert.All(zero.Where(e => e.Prompt != PretrainCorpus.WorkedStepsPrompt),
            e => Assert.StartsWith("\\boxed{", e.Completion));
    }

    [Fact]
    public void ToyR1ZeroRunReportsTheUnseenLevelAndBehaviour()
    {
        var runs = Path.Combine(Path.GetTempPath(), "nr-runs-" + Guid.NewGuid().ToString("N"));
        try
        {
            var settings = TrainPipelineTests.Toy(runs) with { R1Zero = true, UnseenProblems = 3 };
            var log = new List<string>();
            TrainPipeline.Run(settings, log.Add);
            Assert.Contains(log, l => l.Contains("unseen level 6"));
            var dir = Path.Combine(runs, "toy");
            var s = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "summary.json"))).RootElement;
            Assert.Equal("r1-zero", s.GetProperty("variant").GetString());
            var u = s.GetProperty("unseen_level");
            Assert.Equal(6, u.GetProperty("level").GetInt32());
            Assert.Equal(3, u.GetProperty("n").GetInt32());
            foreach (var side in new[] { "after_pretraining", "after_rl" })
            {
                Assert.InRange(u.GetProperty(side).GetProperty("accuracy").GetDouble(), 0, 1);
                Assert.Equal(3, u.GetProperty(side).GetProperty("behaviour").GetProperty("all").GetProperty("n")
                    .GetInt32());
            }
            Assert.True(s.GetProperty("checks").TryGetProperty("unseen_level_gain_points", out _));
            Assert.Equal(5, s.GetProperty("after_rl").GetProperty("behaviour").GetProperty("all").GetProperty("n")
                .GetInt32());
            var rows = File.ReadAllLines(Path.Combine(dir, "metrics.jsonl"));
            // The GRPO rows carry the behaviour of the rollouts (the toy's tiny model may or may not think, so only
            // the always-present count of the eval row is checked through the summary above).
            Assert.Contains(rows, r => r.Contains("\"phase\": 1"));
            Assert.Contains("Behaviour inside the traces", File.ReadAllText(Path.Combine(dir, "report.html")));
        }
        finally { if (Directory.Exists(runs)) Directory.Delete(runs, true); }
    }

    [Fact]
    public void TrainerLogsBehaviourOfRolloutsAndHeldOutEvaluations()
    {
        var tok = new CharTokenizer();
        using var policy = new UnigramPolicy(tok.VocabSize);
        // Make <think> the likeliest token, so every completion holds a trace (and none is correct).
        using (NativeReasoner.Tensor.NoGrad())
        {
            var bias = new float[tok.VocabSize];
            bias[tok.Encode(CharTokenizer.ThinkStart)[0]] = 6f;
            policy.Bias.CopyFrom_(NativeReasoner.Tensor.FromArray(bias, tok.VocabSize));
        }
        var task = TaskRegistry.Create("ladder");
        var config = new GrpoConfig
        {
            NumGenerations = 2, PromptsPerStep = 2, MaxCompletionLength = 6, LearningRate = 0f, WarmupSteps = 0,
            TotalSteps = 1, EvalEvery = 1, EvalProblems = 5, Seed = 1,
        };
        using var trainer = new GrpoTrainer(policy, null, tok, task, new RewardSet().Add(new AccuracyReward(task)),
            PromptTemplate.Default, config);
        var m = trainer.Step().ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.True(m["behaviour/think_length_incorrect"] > 0);
        Assert.Equal(0, m["behaviour/self_correction_rate"]);
        Assert.True(m["eval/behaviour/think_length_incorrect"] > 0);
        for (int level = 1; level <= 5; level++)
            Assert.True(m.ContainsKey($"eval/behaviour/think_length_incorrect/level_{level}"), $"level {level}");
        Assert.False(m.ContainsKey("eval/behaviour/think_length_correct"));
    }
}
