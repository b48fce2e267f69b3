using NativeReasoner.Kernels;
using NativeReasoner.Kernels.Quant;
using NativeReasoner.Model;
using NativeReasoner.Model.Gguf;
using NativeReasoner.Nn;
using NativeReasoner.Tests.Model;
using Xunit;
using Xunit.Abstractions;

namespace NativeReasoner.Tests.Gguf;

/// <summary>
/// A block-quantised GGUF of a dense family loads for inference with its projections packed as stored (no float32
/// copy): the weights hold about the file's bytes, and the logits equal those of the same blocks dequantised to
/// float32 within the packed product's activation rounding.
/// </summary>
public sealed class PackedGgufLoadTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = ModelTestUtil.TempDir();

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    [Theory]
    [InlineData(GgmlType.Q8_0, QuantFormat.Q8_0)]
    [InlineData(GgmlType.Q4_K, QuantFormat.Q4_K)]
    [InlineData(GgmlType.Q4_0, QuantFormat.Q4_0)]
    public void QuantisedGguf_LoadsPacked(GgmlType type, QuantFormat format)
    {
        // hidden 256 and intermediate 512: whole Q4_K blocks of 256 in every projection.
        var config = CausalLMRegistry.ParseConfig("""
            {"model_type": "qwen2", "vocab_size": 96, "hidden_size": 256, "intermediate_size": 512,
             "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
             "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "tie_word_embeddings": false}
            """);
        string gguf = Path.Combine(_dir, $"{type}.gguf");
        using (var model = config.Build(new Generator(21)))
            GgufExporter.Export(model, gguf, type, "packed");
        using var packed = CausalLMRegistry.Load(gguf, null, CheckpointLoadOptions.Inference, out var report);
        using var decoded = CausalLMRegistry.Load(gguf);
        output.WriteLine(string.Join("\n", report.Notes));
        var state = ((Module)packed).StateDict();
        foreach (var name in new[]
                 {
                     "model.layers.0.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight",
                     "model.layers.1.self_attn.o_proj.weight", "model.layers.0.mlp.down_proj.weight",
                     "model.layers.1.mlp.up_proj.weight", "lm_head.weight",
                 })
            Assert.True(state[name].PackedFormat == format, $"{name} is {state[name].DType}");
        Assert.Equal(DType.BFloat16, state["model.embed_tokens.weight"].DType);
        Assert.Equal(DType.Float32, state["model.norm.weight"].DType);
        long fileBytes = new FileInfo(gguf).Length;
        long held = state.Values.Sum(t => t.StorageBytes);
        output.WriteLine($"{type}: weights hold {held} bytes for a {fileBytes}-byte file");
        Assert.True(held <= 1.3 * fileBytes, $"weights hold {held} bytes for a {fileBytes}-byte file");
        long[] ids = [1, 5, 9, 2, 33, 17, 4, 8, 0, 3, 61, 7];
        float[] Logits(ICausalLM m)
        {
            using var scope = new TensorScope();
            return m.Forward(Tensor.FromArray(ids, 2, 6)).ToArray();
        }
        var got = Logits(packed);
        Assert.DoesNotContain(got, float.IsNaN);
        double rel = ModelTestUtil.RelError(got, Logits(decoded));
        output.WriteLine($"{type}: packed vs decoded float32 logits, max rel {rel:E2}");
        Assert.True(rel <= 3e-2, $"{type}: packed vs decoded logits differ by {rel:E2}");
    }
}
