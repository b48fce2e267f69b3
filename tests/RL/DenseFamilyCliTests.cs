using System.Text.Json;
using NativeReasoner.Cli;
using NativeReasoner.IO;
using NativeReasoner.Model;
using NativeReasoner.RL;
using Xunit;

namespace NativeReasoner.Tests.RL;

/// <summary>
/// The RL commands on a tiny qwen2 model directory (GQA, q/k/v biases): nr generate, nr eval, nr grpo-grad,
/// nr pipeline r1-zero, the r1 pipeline (cold-start SFT, GRPO, rejection SFT) and nr train, also on qwen3_moe.
/// </summary>
public class DenseFamilyCliTests
{
    private static string TempDir()
    {
        var d = Path.Combine(Path.GetTempPath(), "nr-dense-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }

    /// <summary>A random model of a preset with a character tokenizer, saved as a model directory.</summary>
    private static string ModelDir(string root, string preset = "qwen2-tiny")
    {
        var tok = new CharTokenizer();
        var config = ModelPresets.Get(preset).ForTokenizer(tok.VocabSize, tok.EosId, tok.BosId, tok.PadId);
        var dir = Path.Combine(root, preset);
        using var b = ModelBundle.Create(config.Build(new Generator(5)), tok, PromptTemplate.Default);
        b.Save(dir);
        return dir;
    }

    private static string ModelType(string dir) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "config.json"))).RootElement.GetProperty("model_type").GetString()!;

    [Fact]
    public void GenerateAndEvalRunOnQwen2()
    {
        var root = TempDir();
        try
        {
            var dir = ModelDir(root);
            Assert.Equal("qwen2", ModelType(dir));
            var prompts = Path.Combine(root, "prompts.jsonl");
            File.WriteAllLines(prompts, ["{\"prompt\": \"What is 2 + 3?\"}", "{\"prompt\": \"What is 17 * 8?\"}"]);
            var outPath = Path.Combine(root, "out.jsonl");
            Assert.Equal(0, Program.Main(["generate", "--model", dir, "--prompts", prompts, "--out", outPath, "--num-samples", "3", "--max-new-tokens", "6", "--seed", "2"]));
            var lines = File.ReadAllLines(outPath);
            Assert.Equal(2, lines.Length);
            foreach (var c in JsonDocument.Parse(lines[1]).RootElement.GetProperty("completions").EnumerateArray())
                Assert.InRange(c.GetProperty("tokens").GetInt32(), 1, 6);
            Assert.Equal(0, Program.Main(["eval", "--model", dir, "--task", "arithmetic", "--n", "4", "--max-new-tokens", "4", "--json"]));
        }
        finally { Directory.Delete(root, true); }
    }

    [Fact]
    public void CachedSamplingAgreesWithRecomputeOnQwen2()
    {
        var root = TempDir();
        try
        {
            using var bundle = ModelBundle.Load(ModelDir(root));
            // Prompts of different lengths in one batch: each sequence decodes at its own position.
            long[][] prompts = [[1, 5, 9, 12], [1, 7], [1, 3, 3, 3, 3, 8]];
            var options = new GenerationOptions { MaxNewTokens = 7, Temperature = 0f, EosTokenIds = [] };
            var cached = bundle.Policy.Generate(prompts, options, new Generator(1));
            var recomputed = Sampling.GenerateByRecompute(bundle.Policy, prompts, options, new Generator(1));
            for (int i = 0; i < prompts.Length; i++) Assert.Equal(recomputed[i].Tokens, cached[i].Tokens);
        }
        finally { Directory.Delete(root, true); }
    }

    [Theory]
    [InlineData("qwen2-tiny-ref")]
    [InlineData("llama-tiny-ref")]
    [InlineData("qwen3-tiny-ref")]
    [InlineData("qwen3-moe-tiny-ref")]
    public void LogitsCommandDecodesEveryFamilyLikePyTorch(string fixture)
    {
        string dir = Path.Combine(AppContext.BaseDirectory, "fixtures", fixture);
        string expected = Path.Combine(dir, "expected.safetensors");
        var outPath = Path.Combine(Path.GetTempPath(), $"nr-logits-{Guid.NewGuid():N}.safetensors");
        try
        {
            Assert.Equal(0, Program.Main(["logits", "--model", dir, "--input", expected, "--out", outPath, "--decode-from", "5"]));
            using var got = SafetensorsFile.Open(outPath);
            using var want = SafetensorsFile.Open(expected);
            var a = got.ReadFloat32("logits");
            var e = want.ReadFloat32("decode_logits");
            Assert.Equal(e.Length, a.Length);
            double scale = e.Max(x => Math.Abs((double)x)), err = 0;
            for (int i = 0; i < e.Length; i++) err = Math.Max(err, Math.Abs((double)a[i] - e[i]));
            Assert.True(err / scale <= 1e-4, $"{fixture}: {err / scale:E3}");
        }
        finally { File.Delete(outPath); }
    }

    /// <summary>
    /// Against tests/reference/dense_families.py: the qwen2 forward with TRL's loss (grpo, β &gt; 0, temperature).
    /// </summary>
    [Fact]
    public void GrpoGradOnQwen2MatchesPyTorchWithTrlsLoss()
    {
        string dir = Path.Combine(AppContext.BaseDirectory, "fixtures", "qwen2-tiny-ref");
        var s = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "grpo_settings.json"))).RootElement;
        var outPath = Path.Combine(Path.GetTempPath(), $"nr-grpo-grad-qwen2-{Guid.NewGuid():N}.safetensors");
        try
        {
            string F(string name) => s.GetProperty(name).GetDouble().ToString("R", System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(0, Program.Main([
                "grpo-grad", "--model", dir, "--input", Path.Combine(dir, "grpo_input.safetensors"), "--out", outPath,
                "--loss-type", s.GetProperty("loss_type").GetString()!, "--beta", F("beta"), "--epsilon-low", F("epsilon_low"),
                "--epsilon-high", F("epsilon_high"), "--temperature", F("temperature"), "--scale-rewards", s.GetProperty("scale_rewards").GetString()!,
                "--num-generations", s.GetProperty("num_generations").GetInt32().ToString(),
                "--max-completion-length", s.GetProperty("max_completion_length").GetInt32().ToString()]));
            using var got = SafetensorsFile.Open(outPath);
            using var want = SafetensorsFile.Open(Path.Combine(dir, "grpo_expected.safetensors"));
            var names = want.Entries.Select(e => e.Name).ToList();
            Assert.Equal(names.Order(), got.Entries.Select(e => e.Name).Order());
            Assert.Contains("grad.model.layers.0.self_attn.k_proj.bias", names);
            var worst = new List<string>();
            foreach (var name in names)
            {
                var e = want.ReadFloat32(name);
                var a = got.ReadFloat32(name);
                double scale = Math.Max(e.Max(v => Math.Abs((double)v)), 1e-12), err = 0;
                for (int i = 0; i < e.Length; i++) err = Math.Max(err, Math.Abs((double)a[i] - e[i]));
                if (!(err / scale <= 1e-4)) worst.Add($"{name}: max |Δ| / max |expected| = {err / scale:G3}");
            }
            Assert.True(worst.Count == 0, string.Join("\n", worst));
        }
        finally { File.Delete(outPath); }
    }

    [Theory]
    [InlineData("qwen2-tiny", "qwen2")]
    [InlineData("qwen3-moe-tiny", "qwen3_moe")]
    public void R1ZeroCliAndR1PipelineWithSftRun(string preset, string modelType)
    {
        var root = TempDir();
        try
        {
            var dir = ModelDir(root, preset);
            var cfg = Path.Combine(root, "grpo.json");
            File.WriteAllText(cfg, """{"task": "arithmetic", "steps": 1, "num_generations": 2, "prompts_per_step": 1, "max_completion_length": 6, "eval_problems": 2}""");
            var zero = Path.Combine(root, "zero");
            Assert.Equal(0, Program.BuildRoot().Parse(["pipeline", "r1-zero", "--model", dir, "--run-dir", zero, "--config", cfg]).Invoke());
            Assert.Equal(modelType, ModelType(Path.Combine(zero, "model")));
            Assert.True(File.Exists(Path.Combine(zero, "summary.json")));

            var settings = new PipelineSettings().WithJson("""
                {"task": "arithmetic", "steps": 1, "steps_2": 1, "num_generations": 2, "prompts_per_step": 1, "max_completion_length": 6,
                 "eval_problems": 2, "cold_start_examples": 4, "sft_batch_size": 4, "sft_epochs": 1, "rejection_problems": 2, "rejection_samples": 2}
                """, "toy");
            var run = Path.Combine(root, "r1");
            R1Run.Run(dir, run, settings);
            Assert.True(File.Exists(Path.Combine(run, "1_cold_start_sft", "metrics.jsonl")));
            Assert.Equal(modelType, ModelType(Path.Combine(run, "model")));
        }
        finally { Directory.Delete(root, true); }
    }

    [Theory]
    [InlineData("qwen3-tiny", "qwen3")]
    [InlineData("qwen3-moe-tiny", "qwen3_moe")]
    public void TrainOffersDenseAndQwenMoePresets(string preset, string modelType)
    {
        var runs = TempDir();
        try
        {
            var s = TrainPipelineTests.Toy(runs) with { Model = ModelPresets.Get(preset).WithMaxPositionEmbeddings(256) };
            TrainPipeline.Run(s, _ => { });
            Assert.Equal(modelType, ModelType(Path.Combine(runs, "toy", "model")));
            using var bundle = ModelBundle.Load(Path.Combine(runs, "toy", "model"));
            Assert.Equal(modelType, bundle.Policy.Model.Config.ModelType);
            Assert.Contains("qwen2-tiny", ModelPresets.Names);
            Assert.Equal(0, Program.BuildRoot().Parse(["train", "--help"]).Invoke());
        }
        finally { Directory.Delete(runs, true); }
    }
}
