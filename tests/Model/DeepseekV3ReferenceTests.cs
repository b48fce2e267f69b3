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
        using var file = SafetensorsFile.Open(Expected);
        float alpha = float.Parse(file.Metadata["alpha"], System.Globalization.CultureInfo.InvariantCulture);
        float gamma = float.Parse(file.Metadata["gamma"], System.Globalization.CultureInfo.InvariantCulture);
        var (ids, b, t) = ReadIds(Expected, "input_ids");
        var (targets, _, _) = ReadIds(Expected, "targets");
        using var model = DeepseekV3Checkpoint.Load(Dir);
        Assert.NotNull(model.Config.QLoraRank);
        model.Train();
        model.SetBalanceLossAlpha(alpha);
        int v = model.Config.VocabSize;

        using (var scope = new TensorScope())
        {
            var logits = model.Forward(Tensor.FromArray(ids, [b, t]));
            double logitErr = RelError(logits.ToArray(), file.ReadFloat32("logits"));
            var ce = Functional.CrossEntropy(logits.View(b * t, v), Tensor.FromArray(targets, [b * t]));
            var bal = model.BalanceLoss()!;
            double ceErr = RelError([ce.Item()], file.ReadFloat32("ce_loss"));
            double balErr = RelError([bal.Item()], file.ReadFloat32("balance_loss"));
            (ce + bal).Backward();
            output.WriteLine($"logits {logitErr:E3}, ce {ceErr:E3}, balance {balErr:E3}");
            Assert.True(logitErr <= 1e-4, $"logits: {logitErr:E3}");
            Assert.True(ceErr <= 1e-4, $"ce: {ceErr:E3}");
            Assert.True(balErr <= 1e-4, $"balance loss: {balErr:E3}");
        }

        double worst = 0;
        string worstName = "";
        int count = 0;
        foreach (var (name, p) in model.NamedParameters())
        {
            var expected = file.ReadFloat32("grad." + name);
            var actual = p.Grad?.ToArray() ?? new float[expected.Length];
            double err = RelError(actual, expected);
            // An all-zero expected gradient (an expert without tokens) must be exactly zero.
            Assert.True(err <= 1e-4, $"grad of {name}: relative error {err:E3}");
            if (err > worst) { worst = err; worstName = name; }
            count++;
        }
        output.WriteLine($"gradients of {count} parameters: worst relative error {worst:E3} ({worstName})");
        Assert.Equal(file.Entries.Count(e => e.Name.StartsWith("grad.", StringComparison.Ordinal)), count);
        Assert.DoesNotContain(model.NamedParameters(), np => np.Name.EndsWith("e_score_correction_bias", StringComparison.Ordinal));

        foreach (var (layer, load) in model.ExpertLoad())
            Assert.Equal(file.ReadFloat32($"expert_load.{layer}"), load.Select(x => (float)x).ToArray());
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
        var (ids, b, t) = ReadIds(Expected, "input_ids");
        using var model = DeepseekV3Checkpoint.Load(Dir);
        model.Eval();
        var full = ReadF32(Expected, "logits");
        int p = 7, v = model.Config.VocabSize;
        var decoded = LogitsRunner.Run(model, ids, b, t, decodeFrom: p);
        var expected = new float[b * (t - p) * v];
        for (int i = 0; i < b; i++) Array.Copy(full, (i * t + p) * v, expected, i * (t - p) * v, (t - p) * v);
        double err = RelError(decoded, expected);
        output.WriteLine($"absorbed decode vs PyTorch full forward (q compression, 256 experts): {err:E3}");
        Assert.True(err <= 1e-4, $"{err:E3}");
    }
}
