using LLama.Native;
using NativeReasoner.Kernels;
using NativeReasoner.Kernels.Quant;
using NativeReasoner.Model;
using NativeReasoner.Model.Gguf;
using NativeReasoner.Nn;
using NativeReasoner.Tests.Model;
using NativeReasoner.Tests.RL.Tokenizers;
using Xunit;
using Xunit.Abstractions;

namespace NativeReasoner.Tests.Gguf;

/// <summary>
/// DeepSeek-V2/V3 through GGUF's deepseek2 architecture: export → read gives the same config and tensors bit for bit
/// (kv_b through llama.cpp's attn_k_b / attn_v_b split), llama.cpp runs our F32 export to the same logits, and a
/// quantised export loads with its projections and experts packed as stored.
/// </summary>
public sealed class DeepseekGgufTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = ModelTestUtil.TempDir();

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    /// <summary>A random model of <paramref name="config"/> with a non-zero router correction bias (zero would
    /// not show a lost or misplaced exp_probs_b).</summary>
    private static DeepseekV3ForCausalLM RandomModel(DeepseekV3Config config, int seed)
    {
        var model = new DeepseekV3ForCausalLM(config, new Generator((ulong)seed));
        var rng = new Random(seed);
        foreach (var moe in model.MoeLayers)
            if (moe.Gate.ScoreCorrectionBias is { } bias)
            {
                var values = Enumerable.Range(0, (int)bias.Numel).Select(_ => (float)(rng.NextDouble() * 0.2 - 0.1))
                    .ToArray();
                bias.CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
            }
        return model;
    }

    private static float[] Logits(ICausalLM model, long[] ids)
    {
        using var scope = new TensorScope();
        return model.Forward(Tensor.FromArray(ids, 1, ids.Length)).ToArray();
    }

    [Theory]
    [InlineData("tiny")]
    [InlineData("tiny-yarn")]
    [InlineData("tiny-qlora-256")]
    [InlineData("bench-tiny")]
    [InlineData("deepseek-v2-tiny")]
    public void F32Export_ReadsBackBitForBit(string preset)
    {
        var config = DeepseekV3Config.Preset(preset);
        string gguf = Path.Combine(_dir, preset + ".gguf");
        using var model = RandomModel(config, 3);
        GgufExporter.Export(model, gguf, GgmlType.F32, preset);
        using (var file = GgufFile.Open(gguf))
        {
            Assert.Equal("deepseek2", file.Metadata.GetString("general.architecture"));
            Assert.True(file.Contains("blk.1.attn_k_b.weight") && file.Contains("blk.1.attn_v_b.weight"));
            Assert.False(file.Contains("blk.1.attn_kv_b.weight"));
        }
        using var back = CausalLMRegistry.Load(gguf);
        var read = (DeepseekV3Config)back.Config;
        // GGUF carries special ids only with a tokenizer (none here); every other field reads back.
        Assert.Equal(config.ToJson(), (read with
        {
            BosTokenId = config.BosTokenId,
            EosTokenIds = config.EosTokenIds,
            PadTokenId = config.PadTokenId,
            InitializerRange = config.InitializerRange,
        }).ToJson());
        var a = ((Module)model).StateDict();
        var b = ((Module)back).StateDict();
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (name, t) in a) Assert.True(t.ToArray().SequenceEqual(b[name].ToArray()), name);
        long[] ids = [1, 5, 9, 2, 33, 17, 4, 8, 0, 3, 61, 7];
        var expected = Logits(model, ids);
        Assert.DoesNotContain(expected, float.IsNaN);
        Assert.Equal(expected, Logits(back, ids));
    }

    [Fact]
    public void LegacyJoinedKvB_AndForeignKeys_Read()
    {
        // A file as older converters wrote it: attn_kv_b whole, no per-head *_mla keys, no nativereasoner keys.
        var config = DeepseekV3Config.Preset("tiny");
        string gguf = Path.Combine(_dir, "new.gguf"), legacy = Path.Combine(_dir, "legacy.gguf");
        using var model = RandomModel(config, 4);
        GgufExporter.Export(model, gguf, GgmlType.F32, "tiny");
        var state = ((Module)model).StateDict();
        using (var f = GgufFile.Open(gguf))
        {
            const string a = "deepseek2.";
            var m = new GgufMetadata();
            foreach (var (k, v) in f.Metadata.Entries)
                if (!k.StartsWith(DeepseekGgufConfig.Prefix, StringComparison.Ordinal) && !k.EndsWith("_mla") &&
                    k != a + "attention.key_length" && k != a + "attention.value_length")
                    m.Add(k, v);
            m.Add(a + "attention.key_length", (uint)config.QkHeadDim);
            m.Add(a + "attention.value_length", (uint)config.VHeadDim);
            var tensors = new List<GgufTensorSource>();
            foreach (var t in f.Tensors)
            {
                if (t.Name.EndsWith("attn_v_b.weight", StringComparison.Ordinal)) continue;
                if (t.Name.EndsWith("attn_k_b.weight", StringComparison.Ordinal))
                {
                    string layer = t.Name.Split('.')[1];
                    var kvB = state[$"model.layers.{layer}.self_attn.kv_b_proj.weight"];
                    tensors.Add(GgufTensorSource.FromBytes($"blk.{layer}.attn_kv_b.weight", GgmlType.F32,
                        [kvB.Shape[0], kvB.Shape[1]],
                        System.Runtime.InteropServices.MemoryMarshal.AsBytes(kvB.ToArray().AsSpan()).ToArray()));
                    continue;
                }
                tensors.Add(GgufTensorSource.FromBytes(t.Name, t.Type, t.Shape, f.GetBytes(t.Name).ToArray()));
            }
            GgufWriter.Write(legacy, m, tensors);
        }
        using var back = CausalLMRegistry.Load(legacy);
        var read = (DeepseekV3Config)back.Config;
        Assert.Equal("noaux_tc", read.TopkMethod); // from the exp_probs_b tensor
        Assert.Equal(DeepseekV3Config.ModelTypeName, read.ModelType); // from the sigmoid gating
        long[] ids = [1, 5, 9, 2, 33, 17];
        Assert.Equal(Logits(model, ids), Logits(back, ids));
    }

    [Fact]
    public void Q8_0Export_LoadsPacked_LogitsMatchDecodedWeights()
    {
        // bench-tiny: hidden 128 and experts of 32 are whole Q8_0 blocks, so every projection and expert packs.
        var config = DeepseekV3Config.Preset("bench-tiny");
        string gguf = Path.Combine(_dir, "q8.gguf");
        using var model = RandomModel(config, 5);
        // Routing is a discontinuity: a score that moves by the activations' rounding can swap an expert and change
        // the output by far more than any rounding. A zero router with distinct correction biases picks the same
        // experts in both models, so the comparison measures the packed products alone.
        foreach (var moe in model.MoeLayers)
        {
            moe.Gate.Weight.CopyFromHost(new byte[moe.Gate.Weight.StorageBytes]);
            var ramp = Enumerable.Range(0, config.NRoutedExperts).Select(i => (float)(i % 7 * 0.03 + i * 1e-3))
                .ToArray();
            moe.Gate.ScoreCorrectionBias!.CopyFromHost(
                System.Runtime.InteropServices.MemoryMarshal.AsBytes(ramp.AsSpan()));
        }
        GgufExporter.Export(model, gguf, GgmlType.Q8_0, "bench-tiny");
        using var packed = CausalLMRegistry.Load(gguf, null, CheckpointLoadOptions.Inference, out var report);
        using var decoded = CausalLMRegistry.Load(gguf); // the same blocks dequantised to float32
        output.WriteLine(string.Join("\n", report.Notes));
        var state = ((Module)packed).StateDict();
        foreach (var name in new[]
                 {
                     "model.layers.1.self_attn.q_a_proj.weight", "model.layers.1.self_attn.q_b_proj.weight",
                     "model.layers.1.self_attn.kv_a_proj_with_mqa.weight", "model.layers.1.self_attn.o_proj.weight",
                     "model.layers.0.mlp.gate_proj.weight", "model.layers.1.mlp.experts.7.down_proj.weight",
                     "model.layers.3.mlp.experts.255.up_proj.weight",
                     "model.layers.2.mlp.shared_experts.gate_proj.weight", "lm_head.weight",
                 })
            Assert.True(state[name].PackedFormat == QuantFormat.Q8_0, $"{name} is {state[name].DType}");
        Assert.Equal(DType.Float32, state["model.layers.1.mlp.gate.weight"].DType);
        Assert.Equal(DType.Float32, state["model.layers.1.self_attn.kv_b_proj.weight"].DType);
        Assert.Equal(DType.BFloat16, state["model.embed_tokens.weight"].DType);
        // The packed weights hold the file's bytes: no float32 copy of a projection is kept.
        long fileBytes = new FileInfo(gguf).Length;
        long held = ((Module)packed).StateDict().Values.Sum(t => t.StorageBytes);
        Assert.True(held <= 1.3 * fileBytes, $"weights hold {held} bytes for a {fileBytes}-byte file");
        long[] ids = [1, 5, 9, 2, 33, 17, 4, 8, 0, 3, 61, 7];
        var reference = Logits(decoded, ids);
        var got = Logits(packed, ids);
        Assert.DoesNotContain(got, float.IsNaN);
        double rel = ModelTestUtil.RelError(got, reference);
        output.WriteLine($"packed Q8_0 vs decoded float32: max rel {rel:E2}");
        // The packed product quantises the activations per block of 32 to int8 (as llama.cpp does): 1.8e-2 measured.
        Assert.True(rel <= 3e-2, $"packed vs decoded logits differ by {rel:E2}");
    }

    [Theory]
    [InlineData("bench-tiny")]
    [InlineData("tiny-yarn")]
    public void F32Gguf_LogitsMatchLlamaCpp(string preset)
    {
        // The preset's shape with the real Qwen3 vocabulary (llama.cpp needs a tokenizer to load the file).
        var config = DeepseekV3Config.Preset(preset) with
        {
            VocabSize = 151669,
            BosTokenId = null,
            EosTokenIds = [151645],
        };
        string source = RealTokenizers.Unpack(RealTokenizers.Qwen3);
        string gguf = Path.Combine(_dir, preset + "-llamacpp.gguf");
        using (var model = RandomModel(config, 11))
        {
            try
            {
                GgufExporter.Export(model, gguf, GgmlType.F32, preset, File.ReadAllText(Path.Combine(source,
                    "tokenizer.json")), File.ReadAllText(Path.Combine(source, "tokenizer_config.json")));
            }
            finally
            {
                Directory.Delete(source, true);
            }
        }
        int[] tokens =
            [9707, 11, 1879, 0, 151644, 872, 198, 3838, 374, 220, 17, 10, 17, 30, 151645, 198, 151644, 77091];
        float[] ours;
        using (var fromGguf = CausalLMRegistry.Load(gguf))
            ours = Logits(fromGguf, tokens.Select(t => (long)t).ToArray());
        float[] theirs = LlamaCppLogits(gguf, tokens, config.VocabSize);
        Assert.DoesNotContain(ours, float.IsNaN);
        double rel = ModelTestUtil.RelError(ours, theirs);
        output.WriteLine($"{preset}: max |ours − llama.cpp| / max |llama.cpp| = {rel:E2}");
        Assert.True(rel <= 1e-4, $"{preset}: max |ours − llama.cpp| / max |llama.cpp| = {rel:E2}");
    }

    private static float[] LlamaCppLogits(string gguf, int[] tokens, int vocab)
    {
        if (!NativeLibraryConfig.LLama.LibraryHasLoaded) NativeLibraryConfig.All.WithLogCallback((_, _) => { });
        NativeApi.llama_empty_call();
        var modelParams = LLamaModelParams.Default();
        modelParams.n_gpu_layers = 0;
        using var model = SafeLlamaModelHandle.LoadFromFile(gguf, modelParams);
        Assert.Equal(vocab, model.Vocab.Count);
        var p = LLamaContextParams.Default();
        p.n_ctx = 64;
        p.n_batch = 64;
        p.n_ubatch = 64;
        p.n_threads = 2;
        p.n_threads_batch = 2;
        // float32 attention end to end (see LlamaCppLogitsTests).
        p.type_k = GGMLType.GGML_TYPE_F32;
        p.type_v = GGMLType.GGML_TYPE_F32;
        p.llama_flash_attn_type = LLamaFlashAttentionType.LLAMA_FLASH_ATTENTION_TYPE_DISABLED;
        using var context = SafeLLamaContextHandle.Create(model, p);
        var batch = new LLamaBatch();
        for (int t = 0; t < tokens.Length; t++) batch.Add(tokens[t], t, (LLamaSeqId)0, true);
        Assert.Equal(DecodeResult.Ok, context.Decode(batch));
        var result = new float[tokens.Length * vocab];
        for (int t = 0; t < tokens.Length; t++) context.GetLogitsIth(t).CopyTo(result.AsSpan(t * vocab, vocab));
        return result;
    }
}
