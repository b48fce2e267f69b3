using NativeReasoner.IO;
using NativeReasoner.Kernels;
using NativeReasoner.Model;
using Xunit;
using static NativeReasoner.Tests.Model.ModelTestUtil;

namespace NativeReasoner.Tests.Model;

public sealed class DeepseekV3CheckpointTests : IDisposable
{
    private readonly string _dir = TempDir();
    private static readonly string Golden = Fixture("deepseek-v3-tiny-yarn");

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    /// <summary>The golden checkpoint rewritten with its tensor list edited.</summary>
    private string Edited(Func<List<SafetensorsTensor>, List<SafetensorsTensor>> edit, string? config = null)
    {
        var tensors = new List<SafetensorsTensor>();
        using (var f = SafetensorsFile.Open(Path.Combine(Golden, "model.safetensors")))
            foreach (var e in f.Entries)
                tensors.Add(new SafetensorsTensor(e.Name, e.DType, e.Shape, f.GetBytes(e.Name).ToArray()));
        SafetensorsWriter.Write(Path.Combine(_dir, "model.safetensors"), edit(tensors));
        File.WriteAllText(Path.Combine(_dir, "config.json"), config ?? File.ReadAllText(Path.Combine(Golden, "config.json")));
        return _dir;
    }

    [Fact]
    public void MissingTensorIsNamed()
    {
        const string name = "model.layers.1.mlp.experts.3.up_proj.weight";
        var dir = Edited(ts => ts.Where(t => t.Name != name).ToList());
        var e = Assert.Throws<CheckpointMismatchException>(() => DeepseekV3Checkpoint.Load(dir));
        Assert.Contains($"'{name}' is missing", e.Message);
        Assert.Contains("[16, 48]", e.Message);
    }

    [Fact]
    public void WrongShapeNamesTensorAndBothShapes()
    {
        const string name = "model.layers.0.self_attn.kv_b_proj.weight";
        var dir = Edited(ts => ts.Select(t => t.Name != name ? t
            : new SafetensorsTensor(name, DType.Float32, [t.Shape[0] - 3, t.Shape[1]], t.Data[..(int)((t.Shape[0] - 3) * t.Shape[1] * 4)])).ToList());
        var e = Assert.Throws<CheckpointMismatchException>(() => DeepseekV3Checkpoint.Load(dir));
        Assert.Contains($"'{name}' has shape [45, 24], the model expects [48, 24]", e.Message);
    }

    [Fact]
    public void UnexpectedTensorIsNamed()
    {
        var dir = Edited(ts => [.. ts, new SafetensorsTensor("model.layers.0.mlp.extra.weight", DType.Float32, [2], new byte[8])]);
        var e = Assert.Throws<CheckpointMismatchException>(() => DeepseekV3Checkpoint.Load(dir));
        Assert.Contains("unexpected tensor 'model.layers.0.mlp.extra.weight' of shape [2]", e.Message);
    }

    [Fact]
    public void MtpLayerIsSkipped()
    {
        var dir = Edited(ts => [.. ts, new SafetensorsTensor("model.layers.2.eh_proj.weight", DType.Float32, [2], new byte[8])]);
        using var m = DeepseekV3Checkpoint.Load(dir);
        Assert.Equal(2, m.Config.NumHiddenLayers);
    }

    [Fact]
    public void BadConfigValueIsAClearError()
    {
        var text = File.ReadAllText(Path.Combine(Golden, "config.json")).Replace("\"topk_group\": 1", "\"topk_group\": 5");
        var dir = Edited(ts => ts, text);
        var e = Assert.Throws<ModelConfigException>(() => DeepseekV3Checkpoint.Load(dir));
        Assert.Contains("topk_group (5) is larger than n_group (1)", e.Message);
        Assert.Contains("config.json", e.Message);
    }

    [Fact]
    public void SaveLoadRoundTripSingleAndSharded()
    {
        var config = DeepseekV3Config.Preset("tiny");
        using var model = new DeepseekV3ForCausalLM(config, new Generator(7));
        // A non-zero router bias must survive the trip too.
        foreach (var moe in model.MoeLayers)
            moe.Gate.ScoreCorrectionBias!.CopyFrom_(Tensor.FromArray(Enumerable.Range(0, config.NRoutedExperts).Select(i => 0.01f * i - 0.03f).ToArray(), config.NRoutedExperts));
        var single = Path.Combine(_dir, "single");
        var sharded = Path.Combine(_dir, "sharded");
        DeepseekV3Checkpoint.Save(model, single);
        DeepseekV3Checkpoint.Save(model, sharded, maxShardBytes: 16_000);
        Assert.True(File.Exists(Path.Combine(single, "model.safetensors")));
        Assert.True(File.Exists(Path.Combine(sharded, "model.safetensors.index.json")));
        Assert.Empty(Directory.GetFiles(single, "*.tmp"));

        long[] ids = [3, 9, 1, 40, 22, 5, 7, 63];
        var expected = LogitsRunner.Run(model, ids, 2, 4);
        foreach (var dir in new[] { single, sharded })
        {
            using var loaded = DeepseekV3Checkpoint.Load(dir);
            Assert.Equal(config with { EosTokenIds = [] }, loaded.Config with { EosTokenIds = [] });
            var a = model.StateDict();
            var b = loaded.StateDict();
            Assert.Equal(a.Keys, b.Keys);
            foreach (var k in a.Keys) Assert.Equal(a[k].ToArray(), b[k].ToArray());
            Assert.Equal(expected, LogitsRunner.Run(loaded, ids, 2, 4));
        }
    }

    [Fact]
    public void ParameterNamesFollowHuggingFace()
    {
        using var model = new DeepseekV3ForCausalLM(DeepseekV3Config.Preset("tiny"));
        var names = model.StateDict().Keys.ToHashSet();
        Assert.Contains("model.embed_tokens.weight", names);
        Assert.Contains("model.layers.0.input_layernorm.weight", names);
        Assert.Contains("model.layers.0.self_attn.q_a_proj.weight", names);
        Assert.Contains("model.layers.0.self_attn.q_a_layernorm.weight", names);
        Assert.Contains("model.layers.0.self_attn.q_b_proj.weight", names);
        Assert.Contains("model.layers.0.self_attn.kv_a_proj_with_mqa.weight", names);
        Assert.Contains("model.layers.0.self_attn.kv_a_layernorm.weight", names);
        Assert.Contains("model.layers.0.self_attn.kv_b_proj.weight", names);
        Assert.Contains("model.layers.0.self_attn.o_proj.weight", names);
        Assert.Contains("model.layers.0.post_attention_layernorm.weight", names);
        Assert.Contains("model.layers.0.mlp.gate_proj.weight", names);
        Assert.Contains("model.layers.1.mlp.gate.weight", names);
        Assert.Contains("model.layers.1.mlp.gate.e_score_correction_bias", names);
        Assert.Contains("model.layers.1.mlp.experts.7.down_proj.weight", names);
        Assert.Contains("model.layers.1.mlp.shared_experts.up_proj.weight", names);
        Assert.Contains("model.norm.weight", names);
        Assert.Contains("lm_head.weight", names);
        // The golden checkpoint has exactly the model's tensors.
        using var golden = DeepseekV3Checkpoint.Load(Golden);
        using var ckpt = SafetensorsCheckpoint.Open(Golden);
        Assert.Equal(ckpt.Names.Order(StringComparer.Ordinal), golden.StateDict().Keys.Order(StringComparer.Ordinal));
    }
}
