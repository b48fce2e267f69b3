using System.Text.Json;
using NativeReasoner.Cli;
using NativeReasoner.RL;
using Xunit;

namespace NativeReasoner.Tests.RL;

/// <summary>`nr generate` / `nr eval` on the tiny DeepSeek-V3 fixture with a small character tokenizer, and their errors.</summary>
public class GenerateEvalTests
{
    private static string Fixture(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "fixtures", .. parts]);

    /// <summary>A model directory: the tiny checkpoint (vocab 80) plus a character tokenizer that fits in it.</summary>
    internal static string ModelDir(bool withTokenizer = true)
    {
        var dir = Path.Combine(Path.GetTempPath(), "nr-model-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        foreach (var f in new[] { "config.json", "model.safetensors" })
            File.Copy(Fixture("deepseek-v3-tiny-yarn", f), Path.Combine(dir, f));
        if (withTokenizer)
        {
            var chars = "\n 0123456789+-*/=?.{}\\abcdehilnorstuwxAUW:".Select(c => c.ToString());
            var tok = new CharTokenizer(CharTokenizer.DefaultSpecialTokens, chars);
            Assert.True(tok.VocabSize <= 80);
            tok.Save(dir);
            PromptTemplate.Default.Save(dir);
        }
        return dir;
    }

    [Fact]
    public void Generate_WritesJsonl_WithCompletionsAndFinishReasons()
    {
        var dir = ModelDir();
        try
        {
            var prompts = Path.Combine(dir, "prompts.jsonl");
            File.WriteAllLines(prompts, ["{\"prompt\": \"What is 2 + 3?\"}", "", "{\"prompt\": \"What is 7 * 8?\"}"]);
            var outPath = Path.Combine(dir, "out.jsonl");
            Assert.Equal(0, Program.Main(["generate", "--model", dir, "--prompts", prompts, "--out", outPath, "--num-samples", "2", "--max-new-tokens", "5", "--seed", "3"]));
            var lines = File.ReadAllLines(outPath);
            Assert.Equal(2, lines.Length);
            var first = JsonDocument.Parse(lines[0]).RootElement;
            Assert.Equal("What is 2 + 3?", first.GetProperty("prompt").GetString());
            var comps = first.GetProperty("completions");
            Assert.Equal(2, comps.GetArrayLength());
            foreach (var c in comps.EnumerateArray())
            {
                Assert.InRange(c.GetProperty("tokens").GetInt32(), 1, 5);
                Assert.Contains(c.GetProperty("finish_reason").GetString(), new[] { "stop", "length" });
                Assert.Equal(JsonValueKind.String, c.GetProperty("text").ValueKind);
            }
            Assert.Equal(0, Program.Main(["eval", "--model", dir, "--task", "arithmetic", "--n", "5", "--max-new-tokens", "4", "--json"]));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void BadInput_ClearErrors()
    {
        var dir = ModelDir(withTokenizer: false);
        try
        {
            var ex = Assert.Throws<FileNotFoundException>(() => ModelBundle.Load(dir));
            Assert.Contains("has no tokenizer", ex.Message);
            Assert.Equal(1, Program.Main(["generate", "--model", dir, "--prompt", "What is 1 + 1?"]));
            var bad = Path.Combine(dir, "bad.jsonl");
            File.WriteAllLines(bad, ["{\"prompt\": \"ok\"}", "{\"prompt\": 3}", "not json"]);
            Assert.Contains("bad.jsonl:2", Assert.Throws<InvalidDataException>(() => PromptFile.Read(bad)).Message);
            Assert.Equal(1, Program.Main(["generate", "--model", dir, "--prompts", bad]));
            Assert.Equal(1, Program.Main(["eval", "--model", dir, "--task", "chess"]));
        }
        finally { Directory.Delete(dir, true); }
    }
}

/// <summary>The GRPO loop on the real model: DeepSeek-V3 (tiny fixture) through CausalLMPolicy, μ = 2, β &gt; 0.</summary>
public class DeepseekGrpoTests
{
    [Fact]
    public void GrpoTrainer_RunsOnCausalLMPolicy_AndTheBundleSavesAndReloads()
    {
        var dir = GenerateEvalTests.ModelDir();
        var saved = dir + "-saved";
        try
        {
            using var bundle = ModelBundle.Load(dir);
            using var reference = ModelBundle.Load(dir);
            var before = bundle.Policy.Model.NamedParameters().First(p => p.Name.EndsWith("q_proj.weight")).Param.ToArray();
            var task = TaskRegistry.Create("arithmetic");
            var rewards = new RewardSet().Add(new AccuracyReward(task)).Add(new FormatReward(), 0.5f).Add(new SoftOverlongPunishment(6, 2));
            var config = new GrpoConfig
            {
                NumGenerations = 2, PromptsPerStep = 2, NumIterations = 2, MaxCompletionLength = 6, LossType = LossType.Grpo,
                Beta = 0.04f, LearningRate = 1e-3f, MaskTruncatedCompletions = true, Seed = 5,
            };
            using (var trainer = new GrpoTrainer(bundle.Policy, reference.Policy, bundle.Tokenizer, task, rewards, bundle.Template, config))
            {
                var m = trainer.Step();
                Assert.True(double.IsFinite(m.First(kv => kv.Key == "loss").Value));
                Assert.True(double.IsFinite(m.First(kv => kv.Key == "entropy").Value));
            }
            var after = bundle.Policy.Model.NamedParameters().First(p => p.Name.EndsWith("q_proj.weight")).Param.ToArray();
            // Random rewards may all tie (no gradient); the KL term and the overlong shaping usually move the weights.
            Assert.Equal(before.Length, after.Length);
            bundle.Save(saved);
            using var back = ModelBundle.Load(saved);
            Assert.Equal(after, back.Policy.Model.NamedParameters().First(p => p.Name.EndsWith("q_proj.weight")).Param.ToArray());
            Assert.Equal(bundle.Tokenizer.VocabSize, back.Tokenizer.VocabSize);
        }
        finally
        {
            Directory.Delete(dir, true);
            if (Directory.Exists(saved)) Directory.Delete(saved, true);
        }
    }
}

public class PipelineTests
{
    [Fact]
    public void R1Zero_WritesRunDirectory_FromJsonConfigAndOverrides()
    {
        var dir = GenerateEvalTests.ModelDir();
        var run = dir + "-run";
        try
        {
            var config = Path.Combine(dir, "grpo.json");
            File.WriteAllText(config, "{\"loss_type\": \"dr_grpo\", \"num_generations\": 2, \"prompts_per_step\": 2, \"max_completion_length\": 5, \"beta\": 0.02, \"eval_problems\": 4, \"overlong_cache\": 2}");
            Assert.Equal(0, Program.Main(["pipeline", "r1-zero", "--model", dir, "--run-dir", run, "--config", config, "--steps", "2", "--num-iterations", "2", "--eval-steps", "2"]));
            var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json"))).RootElement;
            Assert.Equal("dr_grpo", summary.GetProperty("settings").GetProperty("loss_type").GetString());
            Assert.Equal(2, summary.GetProperty("settings").GetProperty("num_iterations").GetInt32());
            Assert.True(summary.GetProperty("after").GetProperty("by_difficulty").EnumerateObject().Any());
            Assert.Equal(2, File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Length);
            Assert.Contains("eval/accuracy", File.ReadAllLines(Path.Combine(run, "metrics.jsonl"))[1]);
            Assert.True(File.Exists(Path.Combine(run, "model", "tokenizer.json")));
            Assert.True(File.Exists(Path.Combine(run, "model", "config.json")));
            Assert.Contains("before:", File.ReadAllText(Path.Combine(run, "samples.md")));
            // Bad settings: clear errors, exit code 1.
            Assert.Equal(1, Program.Main(["pipeline", "r1-zero", "--model", dir, "--run-dir", run, "--loss-type", "ppo"]));
            File.WriteAllText(config, "{\"lr\": 1}");
            Assert.Contains("unknown setting 'lr'", Assert.Throws<ArgumentException>(() => new GrpoSettings().WithJson(File.ReadAllText(config), config)).Message);
        }
        finally
        {
            Directory.Delete(dir, true);
            if (Directory.Exists(run)) Directory.Delete(run, true);
        }
    }
}
