using System.Text.Json;
using NativeReasoner.Cli;
using NativeReasoner.IO;
using Xunit;

namespace NativeReasoner.Tests.RL;

/// <summary>`nr grpo-grad` on the tiny DeepSeek-V3 against TRL + the official model code (golden grpo-clip-kl).</summary>
public class GrpoGradTests
{
    private static string Fixture(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "fixtures", .. parts]);

    [Fact]
    public void MatchesGolden_LossLogpsAdvantagesAndEveryGradient()
    {
        var s = JsonDocument.Parse(File.ReadAllText(Fixture("grpo-clip-kl", "settings.json"))).RootElement;
        var outPath = Path.Combine(Path.GetTempPath(), $"nr-grpo-grad-{Guid.NewGuid():N}.safetensors");
        try
        {
            int rc = Program.Main([
                "grpo-grad", "--model", Fixture("deepseek-v3-tiny-yarn"), "--input", Fixture("grpo-clip-kl", "input.safetensors"), "--out", outPath,
                "--loss-type", s.GetProperty("loss_type").GetString()!, "--beta", s.GetProperty("beta").GetSingle().ToString("R"),
                "--epsilon-low", s.GetProperty("epsilon_low").GetSingle().ToString("R"), "--epsilon-high", s.GetProperty("epsilon_high").GetSingle().ToString("R"),
                "--temperature", s.GetProperty("temperature").GetSingle().ToString("R"), "--scale-rewards", s.GetProperty("scale_rewards").GetString()!,
                "--num-generations", s.GetProperty("num_generations").GetInt32().ToString(),
                "--max-completion-length", s.GetProperty("max_completion_length").GetInt32().ToString()]);
            Assert.Equal(0, rc);
            using var got = SafetensorsFile.Open(outPath);
            using var want = SafetensorsFile.Open(Fixture("grpo-clip-kl", "expected.safetensors"));
            var names = want.Entries.Select(e => e.Name).ToList();
            Assert.Equal(names.Order(), got.Entries.Select(e => e.Name).Order());
            var worst = new List<string>();
            foreach (var name in names)
            {
                var e = want.ReadFloat32(name);
                var a = got.ReadFloat32(name);
                double scale = Math.Max(e.Max(v => Math.Abs((double)v)), 1e-12), err = 0;
                for (int i = 0; i < e.Length; i++) err = Math.Max(err, Math.Abs(a[i] - e[i]));
                if (err / scale > 1e-4) worst.Add($"{name}: max |Δ| / max |expected| = {err / scale:G3}");
            }
            Assert.True(worst.Count == 0, string.Join("\n", worst));
        }
        finally { File.Delete(outPath); }
    }
}
