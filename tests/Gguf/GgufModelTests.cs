using NativeReasoner.Kernels.Quant;
using NativeReasoner.Model;
using NativeReasoner.Model.Gguf;
using NativeReasoner.Tests.Model;
using Xunit;

namespace NativeReasoner.Tests.Gguf;

/// <summary>
/// Models through GGUF: export → read gives the same tensors (F32 bit for bit, F16/BF16 as rounded, Q8_0 as the quant
/// kernels' quantise-dequantise) and the same logits; llama's q/k rows follow llama.cpp's permutation.
/// </summary>
public sealed class GgufModelTests : IDisposable
{
    private readonly string _dir = ModelTestUtil.TempDir();

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    /// <summary>
    /// A reference fixture's model. qwen3-moe-tiny-ref has a dense layer 0 (mlp_only_layers), which GGUF's qwen3moe
    /// cannot express, so that one is the same config with every layer sparse and random weights.
    /// </summary>
    private static ICausalLM SourceModel(string fixture)
    {
        if (fixture != "qwen3-moe-tiny-ref") return CausalLMRegistry.Load(ModelTestUtil.Fixture(fixture));
        var json = System.Text.Json.Nodes.JsonNode.Parse(
            File.ReadAllText(Path.Combine(ModelTestUtil.Fixture(fixture), "config.json")))!.AsObject();
        json.Remove("mlp_only_layers");
        return CausalLMRegistry.ParseConfig(json.ToJsonString()).Build(new Generator(5));
    }

    /// <summary>config.json without the keys GGUF does not carry (unused sliding-window settings, special
    /// ids).</summary>
    private static string ComparableConfig(ICausalLMConfig config)
    {
        var json = System.Text.Json.Nodes.JsonNode.Parse(config.ToJson())!.AsObject();
        foreach (var key in new[]
                 { "sliding_window", "max_window_layers", "bos_token_id", "eos_token_id", "pad_token_id" })
            json.Remove(key);
        return json.ToJsonString();
    }

    private static float[] Logits(ICausalLM model)
    {
        using var scope = new TensorScope();
        var ids = Tensor.FromArray(new long[] { 1, 5, 9, 2, 33, 17, 4, 8, 0, 3, 61, 7 }, 2, 6);
        return model.Forward(ids).ToArray();
    }

    [Theory]
    [InlineData("qwen2-tiny-ref")]
    [InlineData("llama-tiny-ref")]
    [InlineData("qwen3-tiny-ref")]
    [InlineData("qwen3-moe-tiny-ref")]
    public void F32Export_ReadsBackBitForBit_SameLogits(string fixture)
    {
        string gguf = Path.Combine(_dir, fixture + ".gguf");
        using var model = SourceModel(fixture);
        GgufExporter.Export(model, gguf, GgmlType.F32, fixture);
        using var back = CausalLMRegistry.Load(gguf);
        Assert.Equal(ComparableConfig(model.Config), ComparableConfig(back.Config));
        var a = ((NativeReasoner.Nn.Module)model).StateDict();
        var b = ((NativeReasoner.Nn.Module)back).StateDict();
        Assert.Equal(a.Keys.OrderBy(k => k), b.Keys.OrderBy(k => k));
        foreach (var (name, t) in a) Assert.Equal(t.ToArray(), b[name].ToArray());
        var expected = Logits(model);
        Assert.Equal(expected, Logits(back));
        Assert.DoesNotContain(expected, float.IsNaN);
    }

    [Theory]
    [InlineData(GgmlType.F16)]
    [InlineData(GgmlType.BF16)]
    [InlineData(GgmlType.Q8_0)]
    public void NarrowExport_ReadsBackAsEncoded(GgmlType type)
    {
        string gguf = Path.Combine(_dir, $"q-{type}.gguf");
        using var model = SourceModel("qwen2-tiny-ref");
        GgufExporter.Export(model, gguf, type, "qwen2-tiny");
        using (var file = GgufFile.Open(gguf))
        {
            Assert.Equal(type, file.GetTensor("blk.0.attn_q.weight").Type);
            Assert.Equal(GgmlType.F32, file.GetTensor("blk.0.attn_norm.weight").Type);
            Assert.Equal(GgmlType.F32, file.GetTensor("blk.0.attn_q.bias").Type);
        }
        using var back = CausalLMRegistry.Load(gguf, null, CheckpointLoadOptions.Inference, out var report);
        var state = ((NativeReasoner.Nn.Module)back).StateDict();
        foreach (var (name, t) in ((NativeReasoner.Nn.Module)model).StateDict())
        {
            float[] source = t.ToArray();
            // Rows that are not whole Q8_0 blocks are written as F16 (as llama.cpp's converter does).
            var written = type == GgmlType.Q8_0 && t.Shape[^1] % 32 != 0 ? GgmlType.F16 : type;
            float[] expected = t.Rank == 1 ? source : Encoded(written, source, t.Shape[^1]);
            // A quantised matrix that cannot be packed (the embedding) is decoded to bf16 for inference.
            if (written == GgmlType.Q8_0 && state[name].DType == NativeReasoner.Kernels.DType.BFloat16)
                expected = expected.Select(BFloat16).ToArray();
            Assert.Equal(expected, PackedValues.Of(state[name]));
        }
        Assert.Equal(type switch
        {
            GgmlType.F16 => NativeReasoner.Kernels.DType.Float16,
            GgmlType.BF16 => NativeReasoner.Kernels.DType.BFloat16,
            _ => NativeReasoner.Kernels.DType.Packed,
        },
            state["model.layers.0.self_attn.q_proj.weight"].DType);
        Assert.Contains(report.Notes, n => n.Contains("kept"));
        Assert.True(ModelTestUtil.RelError(Logits(back), Logits(model)) < 2e-2);
    }

    /// <summary>What a row of float32 becomes in <paramref name="type"/>, computed independently of the
    /// exporter.</summary>
    private static float[] Encoded(GgmlType type, float[] values, int cols)
    {
        var result = new float[values.Length];
        for (int i = 0; i < values.Length; i++)
            result[i] = type switch
            {
                GgmlType.F16 => (float)(Half)values[i],
                GgmlType.BF16 => BFloat16(values[i]),
                _ => values[i],
            };
        if (type == GgmlType.Q8_0)
        {
            var row = new byte[QuantFormat.Q8_0.RowBytes(cols)];
            for (int r = 0; r < values.Length / cols; r++)
            {
                BlockQuantizer.QuantizeRow(QuantFormat.Q8_0, values.AsSpan(r * cols, cols), row);
                BlockQuantizer.DequantizeRow(QuantFormat.Q8_0, row, result.AsSpan(r * cols, cols));
            }
        }
        return result;
    }

    // Round to nearest even through double arithmetic (independent of the bit trick the exporter uses).
    private static float BFloat16(float f)
    {
        if (f == 0 || !float.IsFinite(f)) return f;
        int exp = (int)Math.Floor(Math.Log2(Math.Abs(f)));
        double ulp = Math.Pow(2, exp - 7);
        double q = Math.Round(f / ulp, MidpointRounding.ToEven) * ulp;
        return (float)q;
    }

    [Fact]
    public void LlamaQkRows_FollowLlamaCppPermutation()
    {
        string gguf = Path.Combine(_dir, "llama.gguf");
        using var model = SourceModel("llama-tiny-ref");
        GgufExporter.Export(model, gguf, GgmlType.F32, "llama");
        var state = ((NativeReasoner.Nn.Module)model).StateDict();
        var config = (NativeReasoner.Model.Dense.DenseConfig)model.Config;
        using var file = GgufFile.Open(gguf);
        foreach (var (proj, heads) in
                 new[] { ("q_proj", config.NumAttentionHeads), ("k_proj", config.NumKeyValueHeads) })
        {
            var hf = state[$"model.layers.1.self_attn.{proj}.weight"];
            float[] w = hf.ToArray();
            int cols = hf.Shape[1], d = config.HeadDim;
            // w.reshape(heads, 2, d/2, cols).swapaxes(1, 2).reshape(heads * d, cols), as convert_hf_to_gguf does.
            var expected = new float[w.Length];
            for (int h = 0; h < heads; h++)
                for (int half = 0; half < 2; half++)
                    for (int i = 0; i < d / 2; i++)
                        for (int c = 0; c < cols; c++)
                            expected[((h * (d / 2) + i) * 2 + half) * cols + c] =
                                w[((h * 2 + half) * (d / 2) + i) * cols + c];
            var stored = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(
                file.GetBytes($"blk.1.attn_{proj[0]}.weight")).ToArray();
            Assert.Equal(expected, stored);
        }
        // qwen2 uses NEOX rope in ggml: no permutation.
        Assert.False(GgufCheckpoint.IsRopePermuted("qwen2", "model.layers.0.self_attn.q_proj.weight"));
    }

    [Fact]
    public void MalformedModelFiles_NameTheTensorOrKey()
    {
        string gguf = Path.Combine(_dir, "m.gguf");
        using var model = SourceModel("qwen2-tiny-ref");
        GgufExporter.Export(model, gguf, GgmlType.F32, "m");
        GgufMetadata Copy(Func<string, bool> keep)
        {
            using var f = GgufFile.Open(gguf);
            var m = new GgufMetadata();
            foreach (var (k, v) in f.Metadata.Entries) if (keep(k)) m.Add(k, v);
            return m;
        }
        List<GgufTensorSource> Tensors(Func<string, bool> keep)
        {
            using var f = GgufFile.Open(gguf);
            return f.Tensors.Where(t => keep(t.Name)).Select(t => GgufTensorSource.FromBytes(t.Name, t.Type, t.Shape,
                f.GetBytes(t.Name).ToArray())).ToList();
        }
        string bad = Path.Combine(_dir, "bad.gguf");
        GgufWriter.Write(bad, Copy(k => k != "qwen2.block_count"), Tensors(_ => true));
        var e = Assert.Throws<GgufException>(() => CausalLMRegistry.Load(bad).Dispose());
        Assert.Contains("'qwen2.block_count'", e.Message);
        GgufWriter.Write(bad, Copy(_ => true), Tensors(n => n != "blk.1.ffn_up.weight"));
        e = Assert.Throws<GgufException>(() => CausalLMRegistry.Load(bad).Dispose());
        Assert.Contains("tensor 'blk.1.ffn_up.weight'", e.Message);
        var extra = Tensors(_ => true);
        extra.Add(GgufTensorSource.FromBytes("blk.9.mystery.weight", GgmlType.F32, [2], new byte[8]));
        GgufWriter.Write(bad, Copy(_ => true), extra);
        e = Assert.Throws<GgufException>(() => CausalLMRegistry.Load(bad).Dispose());
        Assert.Contains("'blk.9.mystery.weight'", e.Message);
        var arch = Copy(k => k != "general.architecture");
        arch.Add("general.architecture", "mamba");
        GgufWriter.Write(bad, arch, Tensors(_ => true));
        e = Assert.Throws<GgufException>(() => CausalLMRegistry.Load(bad).Dispose());
        Assert.Contains("'mamba', expected one of llama, qwen2, qwen3, qwen3moe", e.Message);
    }

    [Fact]
    public void DeepseekExport_OfWhatDeepseek2CannotHold_IsAClearError()
    {
        // deepseek2 makes every layer after the leading dense ones sparse: interleaved MoE layers cannot be written.
        var config = DeepseekV3Config.Preset("tiny-qlora-256") with { MoeLayerFreq = 2 };
        using var model = new DeepseekV3ForCausalLM(config, new Generator(1));
        var e = Assert.Throws<ModelConfigException>(() =>
            GgufExporter.Export(model, Path.Combine(_dir, "ds.gguf"), GgmlType.F32, "ds"));
        Assert.Contains("moe_layer_freq", e.Message);
        Assert.Throws<ArgumentException>(() => GgufExporter.ParseType("q6_k"));
    }
}
