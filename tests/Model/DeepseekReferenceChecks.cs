using NativeReasoner.IO;
using NativeReasoner.Model;
using Xunit;
using Xunit.Abstractions;
using static NativeReasoner.Tests.Model.ModelTestUtil;

namespace NativeReasoner.Tests.Model;

/// <summary>
/// The comparisons the DeepSeek-V2 and -V3 reference tests share (tests/reference/deepseek_v2.py and deepseek_v3.py
/// write the same entries): logits, cross-entropy and balance loss of one training forward, the gradient of every
/// parameter, the per-layer expert loads, and the cached decode through the compressed MLA cache against the full
/// forward's logits. All at 1e-4 relative error (the references run in float64).
/// </summary>
internal static class DeepseekReferenceChecks
{
    /// <summary>
    /// Forward in training mode with the file's balance-loss alpha, CE + balance loss, backward; then every gradient
    /// ("grad.NAME", an all-zero expected gradient must be exactly zero) and the expert loads ("expert_load.LAYER").
    /// </summary>
    public static void LogitsLossesGradientsAndLoads(DeepseekV3ForCausalLM model, string expectedPath, string label,
        ITestOutputHelper output)
    {
        using var file = SafetensorsFile.Open(expectedPath);
        float alpha = float.Parse(file.Metadata["alpha"], System.Globalization.CultureInfo.InvariantCulture);
        var (ids, b, t) = ReadIds(expectedPath, "input_ids");
        var (targets, _, _) = ReadIds(expectedPath, "targets");
        model.Train();
        model.SetBalanceLossAlpha(alpha);
        int v = model.Config.VocabSize;

        using (var scope = new TensorScope())
        {
            var logits = model.Forward(Tensor.FromArray(ids, [b, t]));                        // [B, T, V]
            double logitErr = RelError(logits.ToArray(), file.ReadFloat32("logits"));
            var ce = Functional.CrossEntropy(logits.View(b * t, v), Tensor.FromArray(targets, [b * t]));
            var bal = model.BalanceLoss()!;
            double ceErr = RelError([ce.Item()], file.ReadFloat32("ce_loss"));
            double balErr = RelError([bal.Item()], file.ReadFloat32("balance_loss"));
            (ce + bal).Backward();
            output.WriteLine($"{label}: logits {logitErr:E3}, ce {ceErr:E3}, balance {balErr:E3}");
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
            Assert.True(err <= 1e-4, $"grad of {name}: relative error {err:E3}");
            if (err > worst) { worst = err; worstName = name; }
            count++;
        }
        output.WriteLine($"gradients of {count} parameters: worst relative error {worst:E3} ({worstName})");
        Assert.Equal(file.Entries.Count(e => e.Name.StartsWith("grad.", StringComparison.Ordinal)), count);
        foreach (var (layer, load) in model.ExpertLoad())
            Assert.Equal(file.ReadFloat32($"expert_load.{layer}"), load.Select(x => (float)x).ToArray());
    }

    /// <summary>
    /// Prefill of the first <paramref name="decodeFrom"/> tokens, then one cached step per token (the absorbed MLA
    /// decode): the logits of positions decodeFrom..T−1 against the reference's full forward.
    /// </summary>
    public static void CachedDecodeMatchesFullForward(DeepseekV3ForCausalLM model, string expectedPath, int decodeFrom,
        string label, ITestOutputHelper output)
    {
        var (ids, b, t) = ReadIds(expectedPath, "input_ids");
        model.Eval();
        var full = ReadF32(expectedPath, "logits");                                           // [B, T, V]
        int p = decodeFrom, v = model.Config.VocabSize;
        var decoded = LogitsRunner.Run(model, ids, b, t, decodeFrom: p);                      // [B, T − p, V]
        var expected = new float[b * (t - p) * v];
        for (int i = 0; i < b; i++) Array.Copy(full, (i * t + p) * v, expected, i * (t - p) * v, (t - p) * v);
        double err = RelError(decoded, expected);
        output.WriteLine($"{label}: absorbed decode through the MLA cache vs PyTorch full forward: {err:E3}");
        Assert.True(err <= 1e-4, $"{err:E3}");
    }
}
