using NativeReasoner.IO;
using NativeReasoner.Model;
using Xunit;
using Xunit.Abstractions;
using static NativeReasoner.Tests.Model.ModelTestUtil;

namespace NativeReasoner.Tests.Model;

/// <summary>
/// Against tests/reference/deepseek_v3.py (PyTorch, float64): q compression, 8 groups × 32 experts with
/// top-8 of 4 groups, YaRN with mscale ≠ mscale_all_dim, the gradient of every parameter for
/// cross-entropy + sequence-wise balance loss, expert loads and the aux-loss-free bias update.
/// </summary>
public sealed class DeepseekV3ReferenceTests(ITestOutputHelper output)
{
    private static readonly string Dir = Fixture("deepseek-v3-ref-qlora");
    private static readonly string Expected = Path.Combine(Dir, "expected.safetensors");

    [Fact]
    public void LogitsLossesGradientsAndBiasUpdateMatchPyTorch()
    {
        using var model = DeepseekV3Checkpoint.Load(Dir);
        Assert.NotNull(model.Config.QLoraRank);
        DeepseekReferenceChecks.LogitsLossesGradientsAndLoads(model, Expected, "v3 q-LoRA", output);
        Assert.DoesNotContain(model.NamedParameters(),
            np => np.Name.EndsWith("e_score_correction_bias", StringComparison.Ordinal));

        using var file = SafetensorsFile.Open(Expected);
        float gamma = float.Parse(file.Metadata["gamma"], System.Globalization.CultureInfo.InvariantCulture);
        model.UpdateRouterBiases(gamma);
        foreach (var l in model.Model.Layers.Where(l => l.Moe != null))
        {
            double err = RelError(l.Moe!.Gate.ScoreCorrectionBias!.ToArray(), file.ReadFloat32($"bias_after.{l.Index}"));
            output.WriteLine($"bias after update, layer {l.Index}: {err:E3}");
            Assert.True(err <= 1e-6, $"bias after update: {err:E3}");
            Assert.All(l.Moe.AccumulatedLoad, x => Assert.Equal(0, x));
        }
    }

    [Fact]
    public void CachedDecodeWithQCompressionMatchesFullForward()
    {
        using var model = DeepseekV3Checkpoint.Load(Dir);
        DeepseekReferenceChecks.CachedDecodeMatchesFullForward(model, Expected, 7, "v3 q-LoRA, 256 experts", output);
    }
}
