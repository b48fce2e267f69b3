using System.Text.Json;
using NativeReasoner.IO;
using NativeReasoner.RL;
using Xunit;

namespace NativeReasoner.Tests.RL;

/// <summary>
/// The GRPO loss and advantages against TRL's own numbers (the golden grpo-clip-kl case) and against the
/// PyTorch reference (tests/reference/grpo.py → tests/fixtures/grpo.safetensors), at ≤ 1e-5.
/// </summary>
public class GrpoLossTests
{
    private static string Fixture(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "fixtures", .. parts]);

    // grpo.py's output: NR_FIXTURES_DIR when set (CI regenerates it with a fresh seed), else the committed one.
    private static string ReferencePath => Path.Combine(NativeReasoner.Tests.Verification.FixtureFile.Directory, "grpo.safetensors");

    /// <param name="floor">Smallest magnitude the relative tolerance is taken of. The loss is a mean of O(1)
    /// per-token terms that largely cancel (advantages are zero-mean per group), so its float32 rounding
    /// is relative to the terms, not to the small result: its checks pass a floor of 1e-2.</param>
    private static void Close(float expected, float actual, float rel = 1e-5f, string what = "", float floor = 1e-3f)
    {
        if (float.IsNaN(expected)) { Assert.True(float.IsNaN(actual), $"{what}: expected NaN, got {actual}"); return; }
        float err = Math.Abs(expected - actual);
        Assert.True(err <= rel * Math.Max(Math.Abs(expected), floor), $"{what}: expected {expected:G9}, got {actual:G9} (rel err {err / Math.Max(Math.Abs(expected), 1e-30f):G3})");
    }

    private static void CloseAll(float[] expected, float[] actual, float tol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        float scale = expected.Max(Math.Abs);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol * Math.Max(scale, 1e-6f) + 1e-12f,
                $"{what}[{i}]: expected {expected[i]:G9}, got {actual[i]:G9}");
    }

    private static Tensor Load(SafetensorsFile f, string name)
    {
        var e = f.GetEntry(name);
        return Tensor.FromArray(f.ReadFloat32(name), e.Shape.Select(d => (int)d).ToArray());
    }

    [Fact]
    public void Golden_TrlGrpoClipKl_LossAndAdvantages()
    {
        using var scope = new TensorScope();
        var settings = JsonDocument.Parse(File.ReadAllText(Fixture("grpo-clip-kl", "settings.json"))).RootElement;
        using var input = SafetensorsFile.Open(Fixture("grpo-clip-kl", "input.safetensors"));
        using var expected = SafetensorsFile.Open(Fixture("grpo-clip-kl", "expected.safetensors"));
        int G = settings.GetProperty("num_generations").GetInt32();
        var adv = Advantages.Compute(input.ReadFloat32("rewards"), G, GrpoNames.ParseScaleRewards(settings.GetProperty("scale_rewards").GetString()!));
        CloseAll(expected.ReadFloat32("advantages"), adv.Values, 1e-5f, "advantages");

        // The expected per-token log-probs stand in for the policy's: a leaf, so the loss is checked alone.
        var logps = Load(expected, "per_token_logps").RequiresGrad_();
        var options = new GrpoLossOptions
        {
            LossType = GrpoNames.ParseLossType(settings.GetProperty("loss_type").GetString()!),
            Beta = settings.GetProperty("beta").GetSingle(),
            EpsilonLow = settings.GetProperty("epsilon_low").GetSingle(),
            EpsilonHigh = settings.GetProperty("epsilon_high").GetSingle(),
            MaxCompletionLength = settings.GetProperty("max_completion_length").GetInt32(),
        };
        using var result = GrpoLoss.Compute(logps, Load(input, "old_per_token_logps"), Load(input, "ref_per_token_logps"),
            Tensor.FromArray(adv.Values, adv.Values.Length), Load(input, "completion_mask"), options);
        Close(expected.ReadFloat32("loss")[0], result.Loss.Item(), 1e-5f, "loss");
    }

    public static TheoryData<string> Cases()
    {
        using var f = SafetensorsFile.Open(ReferencePath);
        var data = new TheoryData<string>();
        foreach (var name in JsonSerializer.Deserialize<string[]>(f.Metadata["cases"])!) data.Add(name);
        return data;
    }

    [Theory, MemberData(nameof(Cases))]
    public void PyTorchFixture_LossGradAndMetrics(string name)
    {
        using var scope = new TensorScope();
        using var f = SafetensorsFile.Open(ReferencePath);
        var attrs = JsonDocument.Parse(f.Metadata[name]).RootElement;
        int G = attrs.GetProperty("num_generations").GetInt32();
        // Fixtures from before these attributes existed hold token-level GRPO cases.
        string Attr(string key, string fallback) => attrs.TryGetProperty(key, out var v) ? v.GetString()! : fallback;
        var estimator = AdvantageEstimators.Parse(Attr("advantage_estimator", "grpo"));
        var adv = AdvantageEstimators.Compute(f.ReadFloat32($"{name}.in.rewards"), G, estimator,
            GrpoNames.ParseScaleRewards(attrs.GetProperty("scale_rewards").GetString()!));
        CloseAll(f.ReadFloat32($"{name}.out.advantages"), adv.Values, 1e-5f, "advantages");

        var logps = Load(f, $"{name}.in.logps").RequiresGrad_();
        var mask = Load(f, $"{name}.in.mask");
        if (attrs.GetProperty("mask_truncated_completions").GetBoolean())
            mask = GrpoLoss.MaskTruncated(mask, f.ReadFloat32($"{name}.in.truncated").Select(v => v != 0).ToArray());
        var numItems = attrs.GetProperty("num_items_in_batch");
        var options = new GrpoLossOptions
        {
            LossType = GrpoNames.ParseLossType(attrs.GetProperty("loss_type").GetString()!),
            Beta = attrs.GetProperty("beta").GetSingle(),
            EpsilonLow = attrs.GetProperty("epsilon_low").GetSingle(),
            EpsilonHigh = attrs.GetProperty("epsilon_high").GetSingle(),
            MaxCompletionLength = attrs.GetProperty("max_completion_length").GetInt32(),
            NumItemsInBatch = numItems.ValueKind == JsonValueKind.Null ? null : numItems.GetSingle(),
            ImportanceSamplingLevel =
                GrpoNames.ParseImportanceSamplingLevel(Attr("importance_sampling_level", "token")),
        };
        var old = f.Contains($"{name}.in.old") ? Load(f, $"{name}.in.old") : null;
        using var result = GrpoLoss.Compute(logps, old, Load(f, $"{name}.in.ref"), Tensor.FromArray(adv.Values, adv.Values.Length), mask, options);
        Close(f.ReadFloat32($"{name}.out.loss")[0], result.Loss.Item(), 1e-5f, "loss", floor: 1e-2f);
        Close(f.ReadFloat32($"{name}.out.kl")[0], result.Kl, 1e-5f, "kl");
        Close(f.ReadFloat32($"{name}.out.clip_low")[0], result.ClipRatioLow, 1e-5f, "clip_low");
        Close(f.ReadFloat32($"{name}.out.clip_high")[0], result.ClipRatioHigh, 1e-5f, "clip_high");
        Close(f.ReadFloat32($"{name}.out.clip_region")[0], result.ClipRatioRegion, 1e-5f, "clip_region");

        result.Loss.Backward();
        CloseAll(f.ReadFloat32($"{name}.out.grad"), logps.Grad!.ToArray(), 1e-5f, "grad");
    }

    [Fact]
    public void Advantages_ZeroStdGroupsAreCountedAndGetZero()
    {
        var adv = Advantages.Compute([1f, 1f, 1f, 0f, 1f, 0.5f], 3, ScaleRewards.Group);
        Assert.Equal(0.5f, adv.FracRewardZeroStd);
        Assert.All(adv.Values.Take(3), v => Assert.Equal(0f, v));
        Assert.True(adv.Values[4] > 0 && adv.Values[3] < 0);
    }

    [Fact]
    public void FixtureCoversEveryEstimatorAndLevel()
    {
        // The theory above only checks what the fixture holds: make sure the new objectives are in it.
        using var f = SafetensorsFile.Open(ReferencePath);
        var attrs = JsonSerializer.Deserialize<string[]>(f.Metadata["cases"])!
            .Select(n => JsonDocument.Parse(f.Metadata[n]).RootElement).ToArray();
        string[] Values(string key) =>
            attrs.Select(a => a.TryGetProperty(key, out var v) ? v.GetString()! : "").Distinct().ToArray();
        Assert.Contains("sequence", Values("importance_sampling_level"));
        foreach (var e in new[] { "grpo", "rloo", "reinforce_pp" }) Assert.Contains(e, Values("advantage_estimator"));
    }

    [Fact]
    public void Rloo_IsTheLeaveOneOutBaseline_ReinforcePp_IsABatchZScore()
    {
        // Group [1, 0, 0, 1]: the others' mean is 1/3 for a 1 and 2/3 for a 0.
        var rloo = AdvantageEstimators.Compute([1f, 0f, 0f, 1f], 4, AdvantageEstimator.Rloo, ScaleRewards.None);
        Assert.Equal(new[] { 2f / 3, -2f / 3, -2f / 3, 2f / 3 }, rloo.Values, new FloatTolerance(1e-6f));
        // Two groups with different means: REINFORCE++ centres per group, then scales over the batch (mean 0, std 1).
        var rpp = AdvantageEstimators.Compute([1f, 0f, 3f, 3f, 0f, 2f], 3, AdvantageEstimator.ReinforcePlusPlus,
            ScaleRewards.Group);
        double mean = rpp.Values.Average(), std = Math.Sqrt(rpp.Values.Sum(v => (v - mean) * (v - mean)) / 5);
        Assert.True(Math.Abs(mean) < 1e-6 && Math.Abs(std - 1) < 1e-3, $"mean {mean}, std {std}");
        Assert.True(rpp.Values[0] < 0 && rpp.Values[2] > 0 && rpp.Values[5] > 0);
        Assert.Throws<ArgumentException>(() => AdvantageEstimators.Parse("ppo"));
        Assert.Throws<ArgumentException>(() => GrpoNames.ParseImportanceSamplingLevel("segment"));
    }

    private sealed class FloatTolerance(float tol) : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) <= tol;
        public int GetHashCode(float v) => 0;
    }

    [Fact]
    public void Errors_NameTheProblem()
    {
        using var scope = new TensorScope();
        var ex = Assert.Throws<ArgumentException>(() => Advantages.Compute([1f, 2f, 3f], 2, ScaleRewards.Group));
        Assert.Contains("num_generations", ex.Message);
        var lp = Tensor.Zeros(2, 3);
        var ex2 = Assert.Throws<ArgumentException>(() => GrpoLoss.Compute(lp, null, null, Tensor.Zeros(2), Tensor.Ones(2, 3), new GrpoLossOptions { Beta = 0.1f }));
        Assert.Contains("reference", ex2.Message);
        Assert.Throws<ArgumentException>(() => GrpoNames.ParseLossType("ppo"));

        // The fused token-loss kernel has per-token ratios only: asking it for GSPO is an error, not a token loss.
        using var policy = new UnigramPolicy(8);
        const NativeReasoner.Model.FinishReason eos = NativeReasoner.Model.FinishReason.Eos;
        SampledSequence[] samples = [new([2], eos), new([3], eos)];
        var batch = new RolloutBatch([new long[] { 1 }], samples, 2);
        var gspo = new GrpoLossOptions { ImportanceSamplingLevel = ImportanceSamplingLevel.Sequence };
        var ex3 = Assert.Throws<ArgumentException>(() => batch.FusedLoss(policy, 1f, null, null, [0f, 0f], [1f, 1f], gspo));
        Assert.Contains("importance_sampling_level", ex3.Message);
    }
}
