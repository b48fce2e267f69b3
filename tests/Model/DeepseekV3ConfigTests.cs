using NativeReasoner.Model;
using Xunit;
using static NativeReasoner.Tests.Model.ModelTestUtil;

namespace NativeReasoner.Tests.Model;

public sealed class DeepseekV3ConfigTests
{
    private static string GoldenConfigText() => File.ReadAllText(Path.Combine(Fixture("deepseek-v3-tiny-yarn"), "config.json"));

    /// <summary>The golden config.json with one top-level field replaced (raw JSON value).</summary>
    private static string With(string field, string rawValue)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(GoldenConfigText())!.AsObject();
        node[field] = System.Text.Json.Nodes.JsonNode.Parse(rawValue);
        return node.ToJsonString();
    }

    [Fact]
    public void ReadsTheGoldenConfig()
    {
        var c = DeepseekV3Config.FromJson(GoldenConfigText());
        Assert.Equal(80, c.VocabSize);
        Assert.Null(c.QLoraRank);
        Assert.Equal(16, c.NRoutedExperts);
        Assert.Equal(2, c.NSharedExperts);
        Assert.Equal(24, c.KvLoraRank);
        Assert.Equal(16, c.QkHeadDim);
        Assert.Equal(4.0, c.RopeScaling!.Factor);
        Assert.Equal(32, c.RopeScaling.OriginalMaxPositionEmbeddings);
        Assert.Equal(0.707, c.RopeScaling.MscaleAllDim);
        Assert.False(c.IsMoeLayer(0));
        Assert.True(c.IsMoeLayer(1));
        Assert.Equal([1L], c.EosTokenIds);
        // softmax scale = 16^-0.5 · (0.1·0.707·ln 4 + 1)²
        double m = 0.1 * 0.707 * Math.Log(4) + 1;
        Assert.Equal(0.25 * m * m, c.SoftmaxScale, 6);
    }

    [Fact]
    public void DefaultsAreHuggingFaces()
    {
        var c = DeepseekV3Config.FromJson("{}");
        Assert.Equal(129280, c.VocabSize);
        Assert.Equal(7168, c.HiddenSize);
        Assert.Equal(61, c.NumHiddenLayers);
        Assert.Equal(1536, c.QLoraRank);
        Assert.Equal(512, c.KvLoraRank);
        Assert.Equal(256, c.NRoutedExperts);
        Assert.Equal(8, c.NGroup);
        Assert.Equal(4, c.TopkGroup);
        Assert.Equal(2.5, c.RoutedScalingFactor);
        Assert.Equal(3, c.FirstKDenseReplace);
        Assert.Null(c.RopeScaling);
        Assert.Equal(576, c.CacheWidthPerLayer);
    }

    [Fact]
    public void JsonRoundTrip()
    {
        var c = DeepseekV3Config.FromJson(GoldenConfigText());
        Assert.Equal(c with { EosTokenIds = [] }, DeepseekV3Config.FromJson(c.ToJson()) with { EosTokenIds = [] });
        Assert.Equal(c.EosTokenIds, DeepseekV3Config.FromJson(c.ToJson()).EosTokenIds);
        var b = DeepseekV3Config.Preset("bench-tiny");
        Assert.Equal(b with { EosTokenIds = [] }, DeepseekV3Config.FromJson(b.ToJson()) with { EosTokenIds = [] });
    }

    [Fact]
    public void Presets()
    {
        foreach (var name in DeepseekV3Config.PresetNames) DeepseekV3Config.Preset(name);
        var b = DeepseekV3Config.Preset("bench-tiny");
        Assert.Equal((128, 128, 4, 384, 4), (b.VocabSize, b.HiddenSize, b.NumHiddenLayers, b.IntermediateSize, b.NumAttentionHeads));
        Assert.Equal((64, 64, 32, 16, 32), (b.QLoraRank!.Value, b.KvLoraRank, b.QkNopeHeadDim, b.QkRopeHeadDim, b.VHeadDim));
        Assert.Equal((256, 1, 32, 8, 8, 4), (b.NRoutedExperts, b.NSharedExperts, b.MoeIntermediateSize, b.NumExpertsPerTok, b.NGroup, b.TopkGroup));
        Assert.Equal(2.5, b.RoutedScalingFactor);
        Assert.Equal(1, b.FirstKDenseReplace);
        Assert.Throws<ModelConfigException>(() => DeepseekV3Config.Preset("huge"));
    }

    [Theory]
    [InlineData("topk_group", "2", "topk_group (2) is larger than n_group (1)")]
    [InlineData("n_group", "3", "n_routed_experts (16) is not divisible into n_group (3) groups")]
    [InlineData("num_experts_per_tok", "17", "larger than the kept groups hold")]
    [InlineData("scoring_func", "\"relu\"", "scoring_func 'relu' is unknown")]
    [InlineData("hidden_size", "0", "hidden_size must be positive")]
    [InlineData("num_attention_heads", "-3", "num_attention_heads must be positive")]
    [InlineData("q_lora_rank", "0", "q_lora_rank must be positive or null")]
    [InlineData("qk_rope_head_dim", "7", "qk_rope_head_dim must be even")]
    [InlineData("vocab_size", "\"eighty\"", "vocab_size must be an integer")]
    [InlineData("rope_scaling", "{\"type\": \"dynamic\", \"factor\": 2}", "rope_scaling type 'dynamic' is not supported")]
    [InlineData("rope_scaling", "{\"type\": \"yarn\", \"factor\": -1}", "rope_scaling.factor must be positive")]
    [InlineData("rope_interleave", "false", "rope_interleave = false is not supported")]
    public void InconsistentValuesAreClearErrors(string field, string value, string message)
    {
        var e = Assert.Throws<ModelConfigException>(() => DeepseekV3Config.FromJson(With(field, value)));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void GroupedTopKNeedsEnoughExpertsInKeptGroups()
    {
        var c = DeepseekV3Config.Preset("bench-tiny");
        var e = Assert.Throws<ModelConfigException>(() => (c with { TopkGroup = 1, NumExpertsPerTok = 40 }).Validate());
        Assert.Contains("topk_group 1 × 32 experts per group = 32", e.Message);
        Assert.Throws<ModelConfigException>(() => DeepseekV3Config.FromJson("not json"));
    }
}
