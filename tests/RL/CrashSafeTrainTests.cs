using System.Text.Json.Nodes;
using NativeReasoner.RL;
using Xunit;

namespace NativeReasoner.Tests.RL;

/// <summary>
/// `nr train` survives abrupt stops: checkpoints are atomic and validated, a rerun resumes from the newest valid
/// one, metrics.jsonl continues gaplessly, and the result equals an uninterrupted run's.
/// </summary>
public class CrashSafeTrainTests
{
    /// <summary>The toy run, checkpointing after every step so that any stop has one to resume from.</summary>
    internal static TrainSettings Toy(string runs) => TrainPipelineTests.Toy(runs) with { CheckpointEveryMinutes = 0 };

    /// <summary>The toy run with more GRPO steps, so random stops land in several places.</summary>
    private static TrainSettings Longer(string runs)
    {
        var s = Toy(runs);
        return s with { Grpo = s.Grpo with { Steps = 6, Trainer = s.Grpo.Trainer with { TotalSteps = 6 } } };
    }

    /// <summary>A stand-in for a kill: thrown from inside the run, so it stops where the run reports progress.</summary>
    private sealed class SimulatedCrash : Exception;

    private static string TempRuns() => Path.Combine(Path.GetTempPath(), "nr-crash-" + Guid.NewGuid().ToString("N"));

    /// <summary>Fields measured on the clock, which differ between any two runs.</summary>
    private static readonly string[] ClockFields = ["elapsed_s", "step_time", "tokens_per_second"];

    internal static List<string> MetricsWithoutClock(string runDir) =>
        File.ReadAllLines(Path.Combine(runDir, "metrics.jsonl")).Select(line =>
        {
            var o = JsonNode.Parse(line)!.AsObject();
            foreach (var f in ClockFields) o.Remove(f);
            return o.ToJsonString();
        }).ToList();

    internal static Dictionary<string, byte[]> ModelFiles(string runDir) =>
        Directory.GetFiles(Path.Combine(runDir, "model"), "*.safetensors")
            .ToDictionary(f => Path.GetFileName(f), f => File.ReadAllBytes(f));

    /// <summary>Steps per phase in order: each phase's steps are 1, 2, … with no gap or repeat.</summary>
    internal static void AssertGaplessMonotone(string runDir, int pretrainSteps, int rlSteps)
    {
        var rows = File.ReadAllLines(Path.Combine(runDir, "metrics.jsonl"))
            .Select(l => JsonNode.Parse(l)!).Select(n => ((int)n["phase"]!.GetValue<double>(),
                (int)n["step"]!.GetValue<double>())).ToList();
        var expected = Enumerable.Range(1, pretrainSteps).Select(i => (0, i))
            .Concat(Enumerable.Range(1, rlSteps).Select(i => (1, i))).ToList();
        Assert.Equal(expected, rows);
    }

    [Fact]
    public void StoppedAtRandomMoments_ResumesToTheUninterruptedResult()
    {
        var runsA = TempRuns();
        var runsB = TempRuns();
        try
        {
            var settingsA = Longer(runsA);
            TrainPipeline.Run(settingsA, _ => { });
            var dirA = Path.Combine(runsA, "toy");

            var settingsB = Longer(runsB);
            var dirB = Path.Combine(runsB, "toy");
            var random = new Random(7);
            var messages = new List<string>();
            int stops = 0;
            for (int attempt = 0; attempt < 40; attempt++)
            {
                // Stop at the n-th report after the first step's: every attempt gets at least one step further.
                int calls = -1, stopAt = random.Next(1, 4);
                try
                {
                    TrainPipeline.Run(settingsB, m =>
                    {
                        messages.Add(m);
                        if (calls < 0 && m.StartsWith('\r')) calls = 0;
                        else if (calls >= 0 && ++calls == stopAt) throw new SimulatedCrash();
                    });
                    break;
                }
                catch (SimulatedCrash) { stops++; }
            }
            Assert.True(File.Exists(Path.Combine(dirB, "summary.json")), "the stopped run never finished");
            Assert.True(stops >= 3, $"only {stops} stops: the test did not interrupt the run enough");
            Assert.Contains(messages, m => m.StartsWith("resuming from"));
            AssertGaplessMonotone(dirB, settingsB.PretrainSteps, settingsB.Grpo.Steps);
            Assert.Equal(MetricsWithoutClock(dirA), MetricsWithoutClock(dirB));
            var a = ModelFiles(dirA);
            var b = ModelFiles(dirB);
            Assert.Equal(a.Keys.Order(), b.Keys.Order());
            foreach (var (name, bytes) in a) Assert.True(bytes.AsSpan().SequenceEqual(b[name]), name + " differs");
            Assert.False(Directory.Exists(Path.Combine(dirB, RunCheckpoints.FolderName)));
        }
        finally
        {
            if (Directory.Exists(runsA)) Directory.Delete(runsA, true);
            if (Directory.Exists(runsB)) Directory.Delete(runsB, true);
        }
    }

    [Fact]
    public void TornAndCorruptCheckpoints_AreIgnoredWithAMessage_AndTheOlderOneResumes()
    {
        var runs = TempRuns();
        try
        {
            var s = Toy(runs);
            var dir = Path.Combine(runs, "toy");
            // Stop in GRPO, after the phase-end checkpoint and at least one GRPO step.
            int calls = 0;
            Assert.Throws<SimulatedCrash>(() => TrainPipeline.Run(s, m =>
            {
                if (m.Contains("GRPO") && ++calls == 2) throw new SimulatedCrash();
            }));
            var store = Path.Combine(dir, RunCheckpoints.FolderName);
            var found = Directory.GetDirectories(store, "ckpt-*").Order(StringComparer.Ordinal).ToArray();
            Assert.Equal(RunCheckpoints.Keep, found.Length);
            // A write that the process did not finish, and a newest checkpoint whose weights were cut short.
            var torn = Directory.CreateDirectory(Path.Combine(store, ".tmp-ckpt-1-0000009-deadbeef")).FullName;
            File.WriteAllText(Path.Combine(torn, "model.safetensors"), "half");
            var newest = found[^1];
            var weights = Directory.GetFiles(newest, "*.safetensors").First();
            using (var f = new FileStream(weights, FileMode.Open)) f.SetLength(f.Length / 2);

            var log = new List<string>();
            TrainPipeline.Run(s, log.Add);
            Assert.Contains(log, m => m.StartsWith("ignoring " + torn) && m.Contains("did not finish"));
            Assert.Contains(log, m => m.StartsWith("ignoring checkpoint " + newest) && m.Contains("bytes"));
            Assert.Contains(log, m => m.StartsWith("resuming from " + found[0]));
            Assert.False(Directory.Exists(torn));
            AssertGaplessMonotone(dir, s.PretrainSteps, s.Grpo.Steps);
        }
        finally { if (Directory.Exists(runs)) Directory.Delete(runs, true); }
    }

    [Fact]
    public void MetricsAfterTheCheckpoint_AreDropped_EarlierOnesKept()
    {
        var path = Path.Combine(Path.GetTempPath(), "nr-metrics-" + Guid.NewGuid().ToString("N") + ".jsonl");
        try
        {
            File.WriteAllLines(path, [
                """{"phase": 0, "step": 1}""", """{"phase": 0, "step": 2}""", """{"phase": 1, "step": 1}""",
                """{"phase": 1, "step": 2}""", """{"phase": 1, "step": 3}""", """{"phase": 1, "st""",
            ]);
            var log = new List<string>();
            var rows = MetricsLogger.KeepThrough(path, 1, 2, log.Add);
            Assert.Equal(4, rows.Count);
            Assert.Equal(["""{"phase": 0, "step": 1}""", """{"phase": 0, "step": 2}""", """{"phase": 1, "step": 1}""",
                          """{"phase": 1, "step": 2}"""], File.ReadAllLines(path));
            Assert.Contains(log, m => m.Contains("dropped 1 line(s) after the checkpoint and 1 torn line(s)"));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void AnotherConfiguration_IsRefused_UnlessOverwrite()
    {
        var runs = TempRuns();
        try
        {
            using (var cancelled = new CancellationTokenSource())
            {
                cancelled.Cancel();
                TrainPipeline.Run(Toy(runs), _ => { }, cancelled.Token);
            }
            var other = Toy(runs) with { PretrainBatch = 5 };
            var e = Assert.Throws<ArgumentException>(
                () => TrainPipeline.Run(other, _ => { }, new CancellationToken(true)));
            Assert.Contains("another configuration", e.Message);
            Assert.Contains("PretrainBatch", e.Message);
            Assert.Contains("--overwrite", e.Message);
            // Wall-time limits and the checkpoint cadence are not part of the configuration.
            TrainPipeline.Run(Toy(runs) with { RlMaxMinutes = 3, CheckpointEveryMinutes = 5 }, _ => { },
                new CancellationToken(true));
            var log = new List<string>();
            TrainPipeline.Run(other with { Overwrite = true }, log.Add, new CancellationToken(true));
            Assert.Contains(log, m => m.StartsWith("--overwrite: emptying"));
            Assert.DoesNotContain(log, m => m.StartsWith("resuming"));
        }
        finally { if (Directory.Exists(runs)) Directory.Delete(runs, true); }
    }

    [Fact]
    public void GeneratorState_ContinuesTheSameStream()
    {
        var g = new Generator(42);
        g.NextNormal();
        var state = g.GetState();
        var copy = Generator.FromState(state);
        for (int i = 0; i < 5; i++) Assert.Equal(g.NextNormal(), copy.NextNormal());
        Assert.Equal(g.NextUInt64(), copy.NextUInt64());
        Assert.Throws<ArgumentException>(() => Generator.FromState([0, 0, 0, 0, 0, 0]));
        Assert.Throws<ArgumentException>(() => Generator.FromState([1, 2, 3]));
    }
}
