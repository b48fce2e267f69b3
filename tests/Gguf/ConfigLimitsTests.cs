using NativeReasoner.Model;
using NativeReasoner.Model.Gguf;
using NativeReasoner.Tests.Model;
using Xunit;

namespace NativeReasoner.Tests.Gguf;

/// <summary>
/// Absurd sizes in config.json or in GGUF metadata are refused when the config is read, naming the key and the
/// allowed range, before any model is built.
/// </summary>
public sealed class ConfigLimitsTests : IDisposable
{
    private readonly string _dir = ModelTestUtil.TempDir();

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private const string Qwen2 = """
        {"model_type": "qwen2", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 48,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
         "max_position_embeddings": 64, "rms_norm_eps": 1e-6}
        """;

    [Theory]
    [InlineData("hidden_size", 1000000000L, "[1, 65536]")]
    [InlineData("vocab_size", 2147483647L, "[1, 4194304]")]
    [InlineData("num_hidden_layers", 100000L, "[1, 4096]")]
    [InlineData("max_position_embeddings", 2000000000L, "[1, 67108864]")]
    [InlineData("num_hidden_layers", -3L, "positive")]
    public void DenseConfig_OutOfRange_NamesTheKey(string key, long value, string expected)
    {
        var json = System.Text.Json.Nodes.JsonNode.Parse(Qwen2)!.AsObject();
        json[key] = value;
        var e = Assert.Throws<ModelConfigException>(() => CausalLMRegistry.ParseConfig(json.ToJsonString()));
        Assert.Contains(key, e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData("hidden_size", 1000000000L, "[1, 65536]")]
    [InlineData("n_routed_experts", 1000000L, "[1, 16384]")]
    [InlineData("kv_lora_rank", 100000000L, "[1, 16384]")]
    [InlineData("num_hidden_layers", 0L, "positive")]
    public void DeepseekConfig_OutOfRange_NamesTheKey(string key, long value, string expected)
    {
        var json = System.Text.Json.Nodes.JsonNode.Parse(DeepseekV3Config.Preset("tiny").ToJson())!.AsObject();
        json[key] = value;
        var e = Assert.Throws<ModelConfigException>(() => CausalLMRegistry.ParseConfig(json.ToJsonString()));
        Assert.Contains(key, e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void GgufMetadata_OutOfRange_NamesTheKey()
    {
        string gguf = Path.Combine(_dir, "ok.gguf"), bad = Path.Combine(_dir, "bad.gguf");
        using (var model = CausalLMRegistry.ParseConfig(Qwen2).Build(new Generator(1)))
            GgufExporter.Export(model, gguf, GgmlType.F32, "ok");
        using (var f = GgufFile.Open(gguf))
        {
            var m = new GgufMetadata();
            foreach (var (k, v) in f.Metadata.Entries)
                if (k == "qwen2.block_count") m.Add(k, 100000u); else m.Add(k, v);
            GgufWriter.Write(bad, m, f.Tensors.Select(t =>
                GgufTensorSource.FromBytes(t.Name, t.Type, t.Shape, f.GetBytes(t.Name).ToArray())).ToList());
        }
        var e = Assert.Throws<GgufException>(() => CausalLMRegistry.Load(bad).Dispose());
        Assert.Contains("num_hidden_layers is 100000, outside the supported range [1, 4096]", e.Message);
        Assert.Contains("bad.gguf", e.Message);
    }
}
