using System.Text.Json.Nodes;
using NativeReasoner.Model;
using NativeReasoner.RL;
using NativeReasoner.Tests.RL;
using Xunit;

namespace NativeReasoner.Tests.Reliability;

/// <summary>
/// `nr pipeline` survives abrupt stops: every SFT and GRPO loop checkpoints atomically, a rerun skips the finished
/// stages and resumes the one under way, each stage's metrics.jsonl continues gaplessly, and the result equals an
/// uninterrupted run's; a directory of another configuration is refused.
/// </summary>
public class CrashSafePipelineTests
{
    /// <summary>Every stage trains several steps (SFT 2 epochs × 2 batches, GRPO 3 and 2 steps).</summary>
    internal const string ToyConfig = """
        {"task": "arithmetic", "steps": 3, "steps_2": 2, "num_generations": 2, "prompts_per_step": 1,
         "max_completion_length": 6, "eval_problems": 2, "eval_steps": 2, "cold_start_examples": 8,
         "sft_batch_size": 4, "sft_epochs": 2, "rejection_problems": 2, "rejection_samples": 2}
        """;

    internal static readonly CrashSafety EveryStep = new() { CheckpointEveryMinutes = 0 };

    private sealed class SimulatedCrash : Exception;

    internal static string TempDir()
    {
        var d = Path.Combine(Path.GetTempPath(), "nr-crashpipe-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }

    /// <summary>A random tiny DeepSeek-V3 saved as a model directory (checkpoint + tokenizer + template).</summary>
    internal static string TinyModelDir(string root)
    {
        var tok = new CharTokenizer();
        var config = DeepseekV3Config.Preset("tiny") with
        {
            VocabSize = Math.Max(64, tok.VocabSize),
            MaxPositionEmbeddings = 256,
        };
        var dir = Path.Combine(root, "base");
        using var b = ModelBundle.Create(new DeepseekV3ForCausalLM(config, new Generator(3)), tok,
            PromptTemplate.Default);
        b.Save(dir);
        return dir;
    }

    private static readonly string[] ClockFields = ["elapsed_s", "step_time", "tokens_per_second"];

    /// <summary>
    /// Each stage's metrics without the clock fields, by stage (a random base model solves nothing, so rejection
    /// sampling keeps nothing and stage 3's SFT, skipped, logs nothing).
    /// </summary>
    internal static Dictionary<string, List<string>> StageMetrics(string run) =>
        R1Run.StageNames.Where(s => File.Exists(Path.Combine(run, s, "metrics.jsonl"))).ToDictionary(s => s, s =>
            File.ReadAllLines(Path.Combine(run, s, "metrics.jsonl")).Select(line =>
        {
            var o = JsonNode.Parse(line)!.AsObject();
            foreach (var f in ClockFields) o.Remove(f);
            return o.ToJsonString();
        }).ToList());

    /// <summary>Each stage's steps are 1, 2, … with no gap or repeat.</summary>
    internal static void AssertGaplessMonotone(string run)
    {
        foreach (var stage in R1Run.StageNames.Where(s => s != "3_rejection_sft"))
        {
            var steps = File.ReadAllLines(Path.Combine(run, stage, "metrics.jsonl"))
                .Select(l => (int)JsonNode.Parse(l)!["step"]!.GetValue<double>()).ToList();
            Assert.True(steps.Count > 0, stage + " logged nothing");
            Assert.Equal(Enumerable.Range(1, steps.Count), steps);
        }
    }

    internal static void AssertSameWeights(string dirA, string dirB)
    {
        var a = Directory.GetFiles(dirA, "*.safetensors").ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
        var b = Directory.GetFiles(dirB, "*.safetensors").ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
        Assert.NotEmpty(a);
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (name, bytes) in a) Assert.True(bytes.AsSpan().SequenceEqual(b[name]), name + " differs");
    }

    [Fact]
    public void R1_StoppedAtRandomMoments_ResumesToTheUninterruptedResult()
    {
        var root = TempDir();
        try
        {
            var model = TinyModelDir(root);
            var settings = new PipelineSettings().WithJson(ToyConfig, "toy");
            var runA = Path.Combine(root, "whole");
            R1Run.Run(model, runA, settings, null, EveryStep);

            var runB = Path.Combine(root, "stopped");
            var random = new Random(11);
            var messages = new List<string>();
            int stops = 0;
            for (int attempt = 0; attempt < 60; attempt++)
            {
                // Stop at the n-th training report after this attempt's first: every attempt gets a step further.
                int calls = -1, stopAt = random.Next(1, 4);
                try
                {
                    R1Run.Run(model, runB, settings, m =>
                    {
                        messages.Add(m);
                        bool report = m.StartsWith("step ") || m.StartsWith("SFT epoch");
                        if (!report) return;
                        if (calls < 0) calls = 0;
                        else if (++calls == stopAt) throw new SimulatedCrash();
                    }, EveryStep);
                    break;
                }
                catch (SimulatedCrash) { stops++; }
            }
            Assert.True(File.Exists(Path.Combine(runB, "summary.json")), "the stopped run never finished");
            Assert.True(stops >= 3, $"only {stops} stops: the test did not interrupt the run enough");
            Assert.Contains(messages, m => m.StartsWith("resuming from"));
            Assert.Contains(messages, m => m.Contains("dropped") && m.Contains("after the checkpoint"));
            AssertGaplessMonotone(runB);
            Assert.Equal(StageMetrics(runA), StageMetrics(runB));
            AssertSameWeights(Path.Combine(runA, "model"), Path.Combine(runB, "model"));
            foreach (var stage in R1Run.StageNames)
                Assert.False(Directory.Exists(Path.Combine(runB, stage, RunCheckpoints.FolderName)), stage);
            var summaryA = JsonNode.Parse(File.ReadAllText(Path.Combine(runA, "summary.json")))!;
            var summaryB = JsonNode.Parse(File.ReadAllText(Path.Combine(runB, "summary.json")))!;
            Assert.Equal(summaryA["after"]!.ToJsonString(), summaryB["after"]!.ToJsonString());
        }
        finally { Directory.Delete(root, true); }
    }

    [Fact]
    public void R1Zero_AnotherConfiguration_IsRefused_OverwriteReplaces_FinishedRunShowsItsSummary()
    {
        var root = TempDir();
        try
        {
            var model = TinyModelDir(root);
            var settings = new PipelineSettings().WithJson(ToyConfig, "toy").Grpo.With("steps", "1");
            var run = Path.Combine(root, "run");
            var first = R1ZeroRun.Run(model, run, settings, null, EveryStep);
            Assert.True(File.Exists(Path.Combine(run, RunIdentity.FileName)));
            Assert.False(Directory.Exists(Path.Combine(run, RunCheckpoints.FolderName)));

            var log = new List<string>();
            var again = R1ZeroRun.Run(model, run, settings, log.Add, EveryStep);
            Assert.Contains(log, m => m.Contains("finished run of this configuration"));
            Assert.Equal(first["after"]!["accuracy"]!.GetValue<double>(),
                         again["after"]!["accuracy"]!.GetValue<double>());

            var other = settings.With("learning_rate", "0.5");
            var e = Assert.Throws<ArgumentException>(() => R1ZeroRun.Run(model, run, other, null, EveryStep));
            Assert.Contains("another configuration", e.Message);
            Assert.Contains("learning_rate", e.Message);
            Assert.Contains("--overwrite", e.Message);
            // The refused run touched nothing.
            var kept = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "summary.json")))!;
            Assert.Equal(again.ToJsonString(), kept.ToJsonString());

            var replaced = R1ZeroRun.Run(model, run, other, null, EveryStep with { Overwrite = true });
            Assert.Equal(0.5, replaced["settings"]!["learning_rate"]!.GetValue<float>(), 6);
        }
        finally { Directory.Delete(root, true); }
    }

    [Fact]
    public void R1Zero_ResumesFromTheCheckpoint_AndEqualsTheUninterruptedRun()
    {
        var root = TempDir();
        try
        {
            var model = TinyModelDir(root);
            var settings = new PipelineSettings().WithJson(ToyConfig, "toy").Grpo;
            var runA = Path.Combine(root, "a");
            R1ZeroRun.Run(model, runA, settings, null, EveryStep);
            var runB = Path.Combine(root, "b");
            Assert.Throws<SimulatedCrash>(() => R1ZeroRun.Run(model, runB, settings, m =>
            {
                if (m.StartsWith("step 2/")) throw new SimulatedCrash();
            }, EveryStep));
            // The stop came after step 2 was logged and before its checkpoint: its line goes, step 1's stays.
            Assert.Equal(2, File.ReadAllLines(Path.Combine(runB, "metrics.jsonl")).Length);
            var log = new List<string>();
            R1ZeroRun.Run(model, runB, settings, log.Add, EveryStep);
            Assert.Contains(log, m => m.StartsWith("resuming from") && m.EndsWith("step 1"));
            Assert.Equal(File.ReadAllLines(Path.Combine(runA, "metrics.jsonl")).Select(StripClock),
                         File.ReadAllLines(Path.Combine(runB, "metrics.jsonl")).Select(StripClock));
            AssertSameWeights(Path.Combine(runA, "model"), Path.Combine(runB, "model"));
        }
        finally { Directory.Delete(root, true); }
    }

    private static string StripClock(string line)
    {
        var o = JsonNode.Parse(line)!.AsObject();
        foreach (var f in ClockFields) o.Remove(f);
        return o.ToJsonString();
    }
}
