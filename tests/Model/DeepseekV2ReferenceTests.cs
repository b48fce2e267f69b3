using NativeReasoner.IO;
using NativeReasoner.Model;
using Xunit;
using Xunit.Abstractions;
using static NativeReasoner.Tests.Model.ModelTestUtil;

namespace NativeReasoner.Tests.Model;

/// <summary>
/// The deepseek_v2 family against tests/reference/deepseek_v2.py (PyTorch, float64): the V2 router (softmax, no
/// correction bias; greedy over all experts with n_group present but unused, or group_limited_greedy with the
/// max group score; renormalise or scale, never both), q_proj without compression, YaRN with mscale =
/// mscale_all_dim, 2 shared experts. Full logits, losses, every gradient, expert loads and the cached decode
/// through the compressed MLA cache.
/// </summary>
public sealed class DeepseekV2ReferenceTests(ITestOutputHelper output)
{
    private static string Dir(string variant) => Fixture("deepseek-v2-ref-" + variant);

    private static DeepseekV3ForCausalLM Load(string variant)
    {
        // Through the registry, as the CLI loads it; the load is strict (no e_score_correction_bias in the file).
        var model = CausalLMRegistry.Load(Dir(variant));
        return Assert.IsType<DeepseekV3ForCausalLM>(model);
    }

    [Theory]
    [InlineData("greedy")]
    [InlineData("grouped")]
    public void LogitsLossesAndGradientsMatchPyTorch(string variant)
    {
        using var model = Load(variant);
        Assert.True(model.Config.IsV2);
        Assert.Equal("deepseek_v2", model.Config.ModelType);
        Assert.Null(model.Config.QLoraRank);
        Assert.DoesNotContain(model.NamedBuffers(),
            nb => nb.Name.EndsWith("e_score_correction_bias", StringComparison.Ordinal));
        Assert.All(model.MoeLayers, m => Assert.Null(m.Gate.ScoreCorrectionBias));
        string expectedPath = Path.Combine(Dir(variant), "expected.safetensors");
        DeepseekReferenceChecks.LogitsLossesGradientsAndLoads(model, expectedPath, variant, output);
    }

    [Theory]
    [InlineData("greedy")]
    [InlineData("grouped")]
    public void CachedDecodeMatchesPyTorchFullForward(string variant)
    {
        using var model = Load(variant);
        string expectedPath = Path.Combine(Dir(variant), "expected.safetensors");
        DeepseekReferenceChecks.CachedDecodeMatchesFullForward(model, expectedPath, 7, variant, output);
    }

    [Fact]
    public void TheBiasUpdateIsAClearErrorWithoutABias()
    {
        using var model = Load("greedy");
        var e = Assert.Throws<InvalidOperationException>(() => model.UpdateRouterBiases(1e-3f));
        Assert.Contains("deepseek_v2: the router has no e_score_correction_bias", e.Message);
    }

    [Fact]
    public void ConfigTakesV2DefaultsRoundTripsAndRejectsV3OnlySettings()
    {
        const string minimal = """
            {"model_type": "deepseek_v2", "vocab_size": 32, "hidden_size": 16, "num_hidden_layers": 2,
            "first_k_dense_replace": 1, "num_attention_heads": 2, "intermediate_size": 24, "moe_intermediate_size": 4,
            "n_routed_experts": 8, "n_shared_experts": 2, "num_experts_per_tok": 2, "n_group": null, "topk_group": null,
            "q_lora_rank": null, "kv_lora_rank": 8, "qk_nope_head_dim": 4, "qk_rope_head_dim": 4, "v_head_dim": 4}
            """;
        var c = Assert.IsType<DeepseekV3Config>(CausalLMRegistry.ParseConfig(minimal));
        Assert.Equal(("deepseek_v2", "softmax", "greedy", false, 1.0),
            (c.ModelType, c.ScoringFunc, c.TopkMethod, c.NormTopkProb, c.RoutedScalingFactor));
        Assert.False(c.HasScoreCorrectionBias);
        Assert.Equal(c.ToJson(), DeepseekV3Config.FromJson(c.ToJson()).ToJson());
        Assert.Contains("\"DeepseekV2ForCausalLM\"", c.ToJson());

        // A V3 config without model_type-specific fields keeps its bias and V3 defaults.
        Assert.True(DeepseekV3Config.Preset("tiny").HasScoreCorrectionBias);

        string With(string extra) => minimal.TrimEnd().TrimEnd('}') + ", " + extra + "}";
        string Error(string extra) =>
            Assert.Throws<ModelConfigException>(() => CausalLMRegistry.ParseConfig(With(extra))).Message;
        Assert.Contains("deepseek_v2 scores experts with softmax, got scoring_func 'sigmoid'",
            Error("\"scoring_func\": \"sigmoid\""));
        Assert.Contains("topk_method 'noaux_tc' cannot apply", Error("\"topk_method\": \"noaux_tc\""));
        Assert.Contains("num_experts_per_tok (9) is larger than n_routed_experts (8)",
            Error("\"num_experts_per_tok\": 9"));
        Assert.Contains("topk_group (3) is larger than n_group (2)",
            Error("\"topk_method\": \"group_limited_greedy\", \"n_group\": 2, \"topk_group\": 3"));
    }

    [Fact]
    public void AV3CheckpointIntoAV2ConfigIsAStrictLoadError()
    {
        // The V3 reference directory holds e_score_correction_bias; read as deepseek_v2 it must not load silently.
        var root = Path.Combine(Path.GetTempPath(), "nr-dsv2-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(root);
        try
        {
            var src = Fixture("deepseek-v3-ref-qlora");
            File.Copy(Path.Combine(src, "model.safetensors"), Path.Combine(root, "model.safetensors"));
            var v3 = DeepseekV3Config.Load(src);
            File.WriteAllText(Path.Combine(root, "config.json"), (v3 with
            {
                ModelType = DeepseekV3Config.V2ModelTypeName,
                ScoringFunc = "softmax",
                TopkMethod = "group_limited_greedy",
            }).Validate().ToJson());
            var e = Assert.ThrowsAny<Exception>(() => CausalLMRegistry.Load(root).Dispose());
            output.WriteLine(e.Message);
            Assert.Contains("e_score_correction_bias", e.Message);
        }
        finally { Directory.Delete(root, true); }
    }
}
