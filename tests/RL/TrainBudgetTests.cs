using System.Text.Json.Nodes;
using NativeReasoner.RL;
using Xunit;

namespace NativeReasoner.Tests.RL;

/// <summary>
/// `nr train` budgets by steps: the same seed gives the same run on a fast or a slow machine, the outer
/// wall-time limit stops a phase and says so, and an interrupted run resumes to the same step budget.
/// </summary>
public class TrainBudgetTests
{
    /// <summary>A clock that moves on by a fixed amount each time it is read: any slowness a test needs.</summary>
    private sealed class SteppingClock(TimeSpan perRead) : TimeProvider
    {
        private long _ticks;
        public int Reads { get; private set; }
        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp()
        {
            Reads++;
            return _ticks += perRead.Ticks;
        }
    }

    /// <summary>Metrics that measure the machine, not the training.</summary>
    private static readonly string[] TimeKeys = ["elapsed_s", "step_time", "tokens_per_second"];

    private static List<string> TrainingMetrics(string runDir, int? phase = null) =>
        File.ReadAllLines(Path.Combine(runDir, "metrics.jsonl"))
            .Select(l => JsonNode.Parse(l)!.AsObject())
            .Where(o => phase == null || (int)o["phase"]!.GetValue<double>() == phase)
            .Select(o =>
            {
                foreach (var k in TimeKeys) o.Remove(k);
                return o.ToJsonString();
            })
            .ToList();

    private static TrainSettings WithGrpoSteps(TrainSettings s, int steps) =>
        s with { Grpo = s.Grpo with { Steps = steps, Trainer = s.Grpo.Trainer with { TotalSteps = steps } } };

    private static string TempRuns() => Path.Combine(Path.GetTempPath(), "nr-budget-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public void SameSeed_SameRun_OnAFastAndAVerySlowClock()
    {
        var runs = TempRuns();
        try
        {
            // 40 s per clock read: the old wall-time cosine would have decayed the LR after a few reads, and a 7.5 min
            // wall budget would have ended the toy run early; with step budgets both runs must agree exactly.
            var slow = new SteppingClock(TimeSpan.FromSeconds(40));
            var settings = TrainPipelineTests.Toy(runs) with
            {
                PretrainSteps = 6,
                PretrainMaxMinutes = 60,
                RlMaxMinutes = 60,
            };
            var fast = TrainPipeline.Run(settings with { Name = "fast" }, _ => { });
            var slowSummary = TrainPipeline.Run(settings with { Name = "slow" }, _ => { }, time: slow);
            Assert.True(slow.Reads > 10, $"the slow clock was read {slow.Reads} times");
            double slowSeconds = slowSummary["timings"]!["pretrain_s"]!.GetValue<double>();
            Assert.True(slowSeconds > 60, $"the slow run took {slowSeconds} simulated seconds");

            var a = TrainingMetrics(Path.Combine(runs, "fast"));
            var b = TrainingMetrics(Path.Combine(runs, "slow"));
            Assert.Equal(6 + 2, a.Count);
            Assert.Equal(a, b);
            foreach (var key in new[] { "after_pretraining", "after_rl", "checks", "budget_hit", "rl_steps" })
                Assert.Equal(fast[key]!.ToJsonString(), slowSummary[key]!.ToJsonString());
            Assert.False(slowSummary["budget_hit"]!.GetValue<bool>());
            Assert.Equal(6, slowSummary["budget"]!["pretrain"]!["steps"]!.GetValue<int>());
        }
        finally { if (Directory.Exists(runs)) Directory.Delete(runs, true); }
    }

    [Fact]
    public void WallLimit_StopsThePhase_AndIsReportedLoudly()
    {
        var runs = TempRuns();
        try
        {
            // A minute per clock read against 3-minute limits: each phase stops after a step or two of its 40.
            var settings = WithGrpoSteps(TrainPipelineTests.Toy(runs), 40) with
            {
                PretrainSteps = 40,
                PretrainMaxMinutes = 3,
                RlMaxMinutes = 3,
            };
            var log = new List<string>();
            var summary = TrainPipeline.Run(settings, log.Add, time: new SteppingClock(TimeSpan.FromMinutes(1)));

            Assert.True(summary["budget_hit"]!.GetValue<bool>());
            foreach (var phase in new[] { "pretrain", "rl" })
            {
                var b = summary["budget"]![phase]!;
                Assert.True(b["wall_limit_hit"]!.GetValue<bool>(), phase);
                Assert.Equal(40, b["planned_steps"]!.GetValue<int>());
                int steps = b["steps"]!.GetValue<int>();
                Assert.InRange(steps, 1, 3);
            }
            Assert.Contains(log, l => l.Contains("WARNING: pre-training hit its wall-time limit of 3 min"));
            Assert.Contains(log, l => l.Contains("WARNING: GRPO hit its wall-time limit of 3 min"));
            // summary.json on disk says it too.
            var onDisk = JsonNode.Parse(File.ReadAllText(Path.Combine(runs, "toy", "summary.json")))!;
            Assert.True(onDisk["budget_hit"]!.GetValue<bool>());
        }
        finally { if (Directory.Exists(runs)) Directory.Delete(runs, true); }
    }

    [Fact]
    public void InterruptedInBothPhases_ResumesToTheSameStepBudget_AndPretrainingMatchesAnUninterruptedRun()
    {
        var runs = TempRuns();
        try
        {
            var settings = TrainPipelineTests.Toy(runs) with { PretrainSteps = 4 };
            settings = WithGrpoSteps(settings, 3);
            var whole = TrainPipeline.Run(settings with { Name = "whole" }, _ => { });

            var dir = Path.Combine(runs, "toy");
            // Ctrl-C after the first pre-training step, then after the first GRPO step of the resumed run.
            foreach (var (marker, phase) in new[] { ("pre-train", "pretrain"), ("GRPO", "rl") })
            {
                using var cts = new CancellationTokenSource();
                var r = TrainPipeline.Run(settings, l => { if (l.Contains(marker)) cts.Cancel(); }, cts.Token);
                Assert.True(r["interrupted"]!.GetValue<bool>());
                var newest = new RunCheckpoints(dir, _ => { }).LoadNewest()!;
                Assert.Equal(phase == "pretrain" ? 0 : 1, newest.Phase);
                Assert.Equal(1, newest.Step);
            }
            var log = new List<string>();
            var resumed = TrainPipeline.Run(settings, log.Add);
            Assert.Contains(log, l => l.Contains("resuming") && l.Contains("rl step 1"));
            Assert.Equal(3, resumed["rl_steps"]!.GetValue<int>());
            Assert.Equal(3, resumed["budget"]!["rl"]!["steps"]!.GetValue<int>());
            Assert.False(resumed["budget_hit"]!.GetValue<bool>());
            Assert.False(Directory.Exists(Path.Combine(dir, RunCheckpoints.FolderName)));

            // Pre-training draws everything from the step index and restores AdamW, so its log matches the whole run's.
            var pretrain = TrainingMetrics(dir, phase: 0);
            Assert.Equal(4, pretrain.Count);
            Assert.Equal(TrainingMetrics(Path.Combine(runs, "whole"), phase: 0), pretrain);
            var rl = TrainingMetrics(dir, phase: 1);
            Assert.Equal(3, rl.Count);
            Assert.Equal(new double[] { 1, 2, 3 }, rl.Select(l => JsonNode.Parse(l)!["step"]!.GetValue<double>()));
            // The trainer's own step count goes on too: the held-out check (every 2 steps) falls on step 2, not 3.
            var evaluated = rl.Select(l => JsonNode.Parse(l)!.AsObject().ContainsKey("eval/accuracy"));
            Assert.Equal(new[] { false, true, false }, evaluated);
            Assert.Equal(3, whole["rl_steps"]!.GetValue<int>());
        }
        finally { if (Directory.Exists(runs)) Directory.Delete(runs, true); }
    }
}
