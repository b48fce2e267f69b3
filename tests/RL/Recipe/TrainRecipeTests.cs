using System.Text.Json;
using NativeReasoner.RL;
using Xunit;

namespace NativeReasoner.Tests.RL.Recipe;

/// <summary>
/// The parts of <c>nr train</c>'s recipe: GRPO that may draw the ladder's level 6 (pre-training never does),
/// GRPO started from a saved model (<c>--init-from</c>), and the sampled evaluation (pass@1 of K samples by level,
/// level 6 included) before and after GRPO in summary.json.
/// </summary>
public class TrainRecipeTests
{
    [Fact]
    public void LadderThatDrawsLevelSixDrawsItsTrainingSplitOnly()
    {
        var six = new LadderTask(drawsUnseenLevel: true);
        Assert.Equal(6, six.MaxDifficulty);
        Assert.Equal(5, new LadderTask().MaxDifficulty);
        var drawn = six.Generate(Split.Train, 60, seed: 3, difficulty: LadderTask.UnseenLevel);
        var heldOut = six.GenerateUnseen(Split.Test, 60, seed: 3).Select(p => p.Key).ToHashSet();
        foreach (var p in drawn)
        {
            Assert.Equal(LadderTask.UnseenLevel, p.Difficulty);
            Assert.False(VerifiableTask.IsHeldOut(p.Key));
            Assert.DoesNotContain(p.Key, heldOut);
            var ab = p.Key.Split('*').Select(long.Parse).ToArray();
            Assert.InRange(ab[0], 11, 99);
            Assert.InRange(ab[1], 11, 99);
        }
        // Without a level given, the six levels cycle.
        Assert.Equal([1, 2, 3, 4, 5, 6], six.Generate(Split.Train, 6, seed: 3).Select(p => p.Difficulty));
        // Pre-training keeps the five-level ladder whatever GRPO draws.
        var s = new TrainSettings { PretrainBatch = 64, RlUnseenWeight = 2 };
        for (int step = 0; step < 3; step++)
            Assert.All(PretrainCorpus.Batch(TaskRegistry.Create(s.Task), s, step),
                e => Assert.InRange(e.Difficulty ?? 0, 1, 5));
    }

    [Fact]
    public void GrpoFromASavedModelStartsWhereThatModelWas_AndReportsSampledScores()
    {
        var runs = Path.Combine(Path.GetTempPath(), "nr-runs-" + Guid.NewGuid().ToString("N"));
        try
        {
            var first = TrainPipelineTests.Toy(runs) with { UnseenProblems = 3, EvalSamples = 0 };
            var a = TrainPipeline.Run(first, _ => { });
            Assert.Null(a["after_rl"]!["sampled"]);
            var model = Path.Combine(runs, "toy", "model");
            var log = new List<string>();
            var second = TrainPipelineTests.Toy(runs) with
            {
                Name = "from-init",
                InitFrom = model,
                UnseenProblems = 3,
                EvalSamples = 3,
                RlUnseenWeight = 1,
            };
            TrainPipeline.Run(second, log.Add);
            Assert.DoesNotContain(log, l => l.Contains("pre-train ["));
            Assert.Contains(log, l => l.Contains("sampled (3 per problem"));
            var s = JsonDocument.Parse(File.ReadAllText(Path.Combine(runs, "from-init", "summary.json"))).RootElement;
            var pre = s.GetProperty("budget").GetProperty("pretrain");
            Assert.Equal(0, pre.GetProperty("steps").GetInt32());
            Assert.Equal(model, pre.GetProperty("init_from").GetString());
            // The saved model, evaluated greedily on the same held-out problems, answers as it did at the end of
            // the run that wrote it: GRPO starts from exactly those weights.
            var before = s.GetProperty("after_pretraining");
            Assert.Equal(a["after_rl"]!["accuracy"]!.GetValue<double>(), before.GetProperty("accuracy").GetDouble());
            Assert.Equal(a["unseen_level"]!["after_rl"]!["accuracy"]!.GetValue<double>(),
                s.GetProperty("unseen_level").GetProperty("after_pretraining").GetProperty("accuracy").GetDouble());
            foreach (var side in new[] { "after_pretraining", "after_rl" })
            {
                var sampled = s.GetProperty(side).GetProperty("sampled");
                Assert.Equal(3, sampled.GetProperty("samples").GetInt32());
                Assert.Equal(0.6, sampled.GetProperty("temperature").GetDouble(), 5);
                Assert.Equal(5, sampled.GetProperty("by_difficulty").EnumerateObject().Count());
                foreach (var level in sampled.GetProperty("by_difficulty").EnumerateObject())
                {
                    double p1 = level.Value.GetProperty("pass@1").GetDouble(), p3 = level.Value.GetProperty("pass@3")
                        .GetDouble();
                    Assert.InRange(p1, 0, 1);
                    Assert.InRange(p3, p1, 1);
                }
                var unseen = s.GetProperty("unseen_level").GetProperty(side).GetProperty("sampled");
                Assert.Equal(3, unseen.GetProperty("n").GetInt32());
                Assert.InRange(unseen.GetProperty("pass@1").GetDouble(), 0, 1);
            }
            // Every wrong greedy answer is listed with its completion.
            foreach (var side in new[] { "after_pretraining", "after_rl" })
            {
                var r = s.GetProperty(side);
                int n = r.GetProperty("by_difficulty").EnumerateObject().Sum(l => l.Value.GetProperty("n").GetInt32());
                Assert.Equal((int)Math.Round((1 - r.GetProperty("accuracy").GetDouble()) * n),
                    r.GetProperty("mistakes").GetArrayLength());
            }
            var checks = s.GetProperty("checks");
            Assert.InRange(checks.GetProperty("min_level_pass_at_1_after_rl").GetDouble(), 0, 1);
            Assert.True(checks.TryGetProperty("every_level_pass_at_1_ge_95", out _));
            Assert.True(checks.TryGetProperty("greedy_accuracy_ge_97", out _));
            Assert.True(checks.TryGetProperty("unseen_level_pass_at_1_gain_points", out _));
        }
        finally { if (Directory.Exists(runs)) Directory.Delete(runs, true); }
    }

    [Fact]
    public void BadRecipeSettingsAreRefusedNamingTheOption()
    {
        var runs = Path.Combine(Path.GetTempPath(), "nr-runs-" + Guid.NewGuid().ToString("N"));
        try
        {
            var toy = TrainPipelineTests.Toy(runs);
            var e = Assert.Throws<ArgumentException>(() => TrainPipeline.Run(
                toy with { InitFrom = Path.Combine(runs, "nowhere") }, _ => { }));
            Assert.Contains("--init-from", e.Message);
            e = Assert.Throws<ArgumentException>(() => TrainPipeline.Run(
                toy with { Name = "w", RlUnseenWeight = -1 }, _ => { }));
            Assert.Contains("--rl-unseen-weight", e.Message);
            e = Assert.Throws<ArgumentException>(() => TrainPipeline.Run(
                toy with { Name = "nan", RlUnseenWeight = double.NaN }, _ => { }));
            Assert.Contains("--rl-unseen-weight", e.Message);
            e = Assert.Throws<ArgumentException>(() => TrainPipeline.Run(
                toy with { Name = "arith", Task = "arithmetic", RlUnseenWeight = 1 }, _ => { }));
            Assert.Contains("ladder", e.Message);
            e = Assert.Throws<ArgumentException>(() => TrainPipeline.Run(toy with
            {
                Name = "six",
                RlUnseenWeight = 1,
                Grpo = toy.Grpo with { Trainer = toy.Grpo.Trainer with { DifficultyWeights = [1, 1, 1, 1, 1, 1] } },
            }, _ => { }));
            Assert.Contains("--rl-unseen-weight", e.Message);
            e = Assert.Throws<ArgumentException>(() => TrainPipeline.Run(
                toy with { Name = "k", EvalSamples = -1 }, _ => { }));
            Assert.Contains("--eval-samples", e.Message);
        }
        finally { if (Directory.Exists(runs)) Directory.Delete(runs, true); }
    }
}
