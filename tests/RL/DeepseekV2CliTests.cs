using System.Text.Json;
using NativeReasoner.Cli;
using NativeReasoner.IO;
using NativeReasoner.Model;
using NativeReasoner.RL;
using Xunit;

namespace NativeReasoner.Tests.RL;

/// <summary>
/// The CLI on deepseek_v2 directories: nr logits (cached decode) and nr grpo-grad against
/// tests/reference/deepseek_v2.py, nr generate and nr pipeline r1-zero on the deepseek-v2-tiny preset.
/// </summary>
public class DeepseekV2CliTests
{
    private static string FixtureDir => Path.Combine(AppContext.BaseDirectory, "fixtures", "deepseek-v2-ref-greedy");

    private static double MaxRelative(float[] actual, float[] expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = Math.Max(expected.Max(x => Math.Abs((double)x)), 1e-12), err = 0;
        for (int i = 0; i < expected.Length; i++) err = Math.Max(err, Math.Abs((double)actual[i] - expected[i]));
        return err / scale; // NaN fails every ≤ comparison below
    }

    [Fact]
    public void LogitsCommandDecodesLikePyTorch()
    {
        string expected = Path.Combine(FixtureDir, "expected.safetensors");
        var outPath = Path.Combine(Path.GetTempPath(), $"nr-logits-v2-{Guid.NewGuid():N}.safetensors");
        try
        {
            const int from = 5;
            Assert.Equal(0, Program.Main(["logits", "--model", FixtureDir, "--input", expected, "--out", outPath,
                "--decode-from", from.ToString()]));
            using var got = SafetensorsFile.Open(outPath);
            using var want = SafetensorsFile.Open(expected);
            var full = want.ReadFloat32("logits");
            var ids = want.Entries.Single(e => e.Name == "input_ids").Shape;
            int b = (int)ids[0], t = (int)ids[1], v = full.Length / (b * t);
            var slice = new float[b * (t - from) * v];
            for (int i = 0; i < b; i++) Array.Copy(full, (i * t + from) * v, slice, i * (t - from) * v, (t - from) * v);
            double err = MaxRelative(got.ReadFloat32("logits"), slice);
            Assert.True(err <= 1e-4, $"deepseek_v2 decode: {err:E3}");
        }
        finally { File.Delete(outPath); }
    }

    [Fact]
    public void GrpoGradMatchesPyTorchWithTrlsLoss()
    {
        var s = JsonDocument.Parse(File.ReadAllText(Path.Combine(FixtureDir, "grpo_settings.json"))).RootElement;
        var outPath = Path.Combine(Path.GetTempPath(), $"nr-grpo-grad-v2-{Guid.NewGuid():N}.safetensors");
        try
        {
            string F(string name) =>
                s.GetProperty(name).GetDouble().ToString("R", System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(0, Program.Main([
                "grpo-grad", "--model", FixtureDir, "--input", Path.Combine(FixtureDir, "grpo_input.safetensors"),
                "--out", outPath, "--loss-type", s.GetProperty("loss_type").GetString()!, "--beta", F("beta"),
                "--epsilon-low", F("epsilon_low"), "--epsilon-high", F("epsilon_high"),
                "--temperature", F("temperature"),
                "--scale-rewards", s.GetProperty("scale_rewards").GetString()!,
                "--num-generations", s.GetProperty("num_generations").GetInt32().ToString(),
                "--max-completion-length", s.GetProperty("max_completion_length").GetInt32().ToString()]));
            using var got = SafetensorsFile.Open(outPath);
            using var want = SafetensorsFile.Open(Path.Combine(FixtureDir, "grpo_expected.safetensors"));
            var names = want.Entries.Select(e => e.Name).ToList();
            Assert.Equal(names.Order(), got.Entries.Select(e => e.Name).Order());
            Assert.Contains("grad.model.layers.1.mlp.gate.weight", names);
            Assert.Contains("grad.model.layers.0.self_attn.q_proj.weight", names);
            var bad = new List<string>();
            foreach (var name in names)
            {
                double err = MaxRelative(got.ReadFloat32(name), want.ReadFloat32(name));
                if (!(err <= 1e-4)) bad.Add($"{name}: max |Δ| / max |expected| = {err:G3}");
            }
            Assert.True(bad.Count == 0, string.Join("\n", bad));
        }
        finally { File.Delete(outPath); }
    }

    [Fact]
    public void GenerateAndR1ZeroRunOnTheV2Preset()
    {
        var root = Path.Combine(Path.GetTempPath(), "nr-dsv2-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(root);
        try
        {
            var tok = new CharTokenizer();
            var config = ModelPresets.Get("deepseek-v2-tiny")
                .ForTokenizer(tok.VocabSize, tok.EosId, tok.BosId, tok.PadId);
            var dir = Path.Combine(root, "model");
            using (var b = ModelBundle.Create(config.Build(new Generator(5)), tok, PromptTemplate.Default)) b.Save(dir);
            string ModelType(string d) => JsonDocument.Parse(File.ReadAllText(Path.Combine(d, "config.json")))
                .RootElement.GetProperty("model_type").GetString()!;
            Assert.Equal("deepseek_v2", ModelType(dir));

            var prompts = Path.Combine(root, "prompts.jsonl");
            File.WriteAllLines(prompts, ["{\"prompt\": \"What is 2 + 3?\"}", "{\"prompt\": \"What is 17 * 8?\"}"]);
            var outPath = Path.Combine(root, "out.jsonl");
            Assert.Equal(0, Program.Main(["generate", "--model", dir, "--prompts", prompts, "--out", outPath,
                "--num-samples", "2", "--max-new-tokens", "6", "--seed", "2"]));
            var lines = File.ReadAllLines(outPath);
            Assert.Equal(2, lines.Length);
            foreach (var c in JsonDocument.Parse(lines[0]).RootElement.GetProperty("completions").EnumerateArray())
                Assert.InRange(c.GetProperty("tokens").GetInt32(), 1, 6);

            // Cached sampling (MLA cache) picks the same tokens as recomputing the whole sequence.
            using (var bundle = ModelBundle.Load(dir))
            {
                long[][] ids = [[1, 5, 9, 12], [1, 7]];
                var options = new GenerationOptions { MaxNewTokens = 5, Temperature = 0f, EosTokenIds = [] };
                var cached = bundle.Policy.Generate(ids, options, new Generator(1));
                var recomputed = Sampling.GenerateByRecompute(bundle.Policy, ids, options, new Generator(1));
                for (int i = 0; i < ids.Length; i++) Assert.Equal(recomputed[i].Tokens, cached[i].Tokens);
            }

            var cfg = Path.Combine(root, "grpo.json");
            File.WriteAllText(cfg, """
                {"task": "arithmetic", "steps": 1, "num_generations": 2, "prompts_per_step": 1,
                 "max_completion_length": 6, "eval_problems": 2}
                """);
            var zero = Path.Combine(root, "zero");
            Assert.Equal(0, Program.BuildRoot()
                .Parse(["pipeline", "r1-zero", "--model", dir, "--run-dir", zero, "--config", cfg]).Invoke());
            Assert.Equal("deepseek_v2", ModelType(Path.Combine(zero, "model")));
        }
        finally { Directory.Delete(root, true); }
    }
}
