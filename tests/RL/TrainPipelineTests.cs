using System.Text.Json;
using NativeReasoner.Model;
using NativeReasoner.RL;
using Xunit;

namespace NativeReasoner.Tests.RL;

/// <summary>`nr train`'s pipeline at a toy budget: every output appears, and an interrupted run resumes.</summary>
public class TrainPipelineTests
{
    internal static TrainSettings Toy(string runs) => new()
    {
        Name = "toy", RunsDirectory = runs,
        Model = DeepseekV3Config.Preset("tiny") with { VocabSize = 128, MaxPositionEmbeddings = 256 },
        PretrainSteps = 3, PretrainBatch = 4, EvalProblems = 5,
        Grpo = new TrainSettings().Grpo with
        {
            Steps = 2,
            Trainer = new TrainSettings().Grpo.Trainer with { NumGenerations = 2, PromptsPerStep = 2, MaxCompletionLength = 6, EvalEvery = 2, EvalProblems = 3, TotalSteps = 2 },
        },
    };

    [Fact]
    public void ToyRun_WritesEveryOutput_AndResumesAfterInterruption()
    {
        var runs = Path.Combine(Path.GetTempPath(), "nr-runs-" + Guid.NewGuid().ToString("N"));
        try
        {
            using (var cancelled = new CancellationTokenSource())
            {
                cancelled.Cancel();
                var r = TrainPipeline.Run(Toy(runs), _ => { }, cancelled.Token);
                Assert.True(r["interrupted"]!.GetValue<bool>());
                Assert.Single(Directory.GetDirectories(Path.Combine(runs, "toy", RunCheckpoints.FolderName), "ckpt-*"));
            }
            var log = new List<string>();
            var summary = TrainPipeline.Run(Toy(runs), log.Add);
            Assert.Contains(log, l => l.Contains("resuming"));
            var dir = Path.Combine(runs, "toy");
            foreach (var f in new[] { "summary.json", "samples.md", "metrics.jsonl", "reward.png", "heldout_accuracy.png", "completion_length.png",
                         "think_rate.png", "accuracy_by_difficulty.png", "length_by_difficulty.png", "report.html",
                         "model/config.json", "model/tokenizer.json", "model/prompt_template.json" })
                Assert.True(File.Exists(Path.Combine(dir, f)), f);
            Assert.False(Directory.Exists(Path.Combine(dir, RunCheckpoints.FolderName)));
            var png = File.ReadAllBytes(Path.Combine(dir, "reward.png"));
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png.Take(4));
            var s = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "summary.json"))).RootElement;
            Assert.True(s.GetProperty("checks").TryGetProperty("hardest_accuracy_gain_points", out _));
            Assert.Equal(5, s.GetProperty("after_rl").GetProperty("by_difficulty").EnumerateObject().Count());
            // The saved model directory works with the other commands.
            using var bundle = ModelBundle.Load(Path.Combine(dir, "model"));
            Assert.Equal(new CharTokenizer().VocabSize, bundle.Tokenizer.VocabSize);
        }
        finally { if (Directory.Exists(runs)) Directory.Delete(runs, true); }
    }
}
