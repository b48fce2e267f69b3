using NativeReasoner.IO;
using NativeReasoner.Model;
using NativeReasoner.Model.Dense;
using Xunit;
using static NativeReasoner.Tests.Model.ModelTestUtil;

namespace NativeReasoner.Tests.Model;

/// <summary>
/// The model_type registry, the dense families' config reading (both RoPE spellings, every scaling type, the
/// recognised-but-unimplemented values), checkpoint mismatches and the context-length limit of generation.
/// </summary>
public sealed class CausalLMRegistryTests
{
    private static string Config(string modelType, string extra = "") =>
        $$"""{"model_type": "{{modelType}}", "vocab_size": 32, "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64{{extra}}}""";

    [Fact]
    public void PicksTheFamilyFromModelType()
    {
        Assert.IsType<DeepseekV3Config>(CausalLMRegistry.ParseConfig(DeepseekV3Config.Preset("tiny").ToJson()));
        foreach (var type in new[] { "qwen2", "llama", "qwen3" })
        {
            var c = Assert.IsType<DenseConfig>(CausalLMRegistry.ParseConfig(Config(type)));
            Assert.Equal(type, c.ModelType);
            Assert.Equal(2, c.KvGroups);
            Assert.Equal(type == "qwen3" ? 128 : 4, c.HeadDim);   // Qwen3's head_dim defaults to 128, not hidden / heads
            Assert.Equal(type == "qwen2", c.QkvBias);
            Assert.False(c.OProjBias);
            Assert.Equal(type == "qwen3", c.QkNorm);
            // The written config reads back the same.
            Assert.Equal(c.ToJson(), CausalLMRegistry.ParseConfig(c.ToJson()).ToJson());
        }
    }

    /// <summary>config.json as the released checkpoints spell it (R1-Distill-Qwen-1.5B, R1-Distill-Llama-8B, Qwen3-0.6B).</summary>
    [Fact]
    public void ReleasedConfigsParse()
    {
        var qwen2 = (DenseConfig)CausalLMRegistry.ParseConfig("""
            {"architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643, "eos_token_id": 151643,
             "hidden_act": "silu", "hidden_size": 1536, "initializer_range": 0.02, "intermediate_size": 8960,
             "max_position_embeddings": 131072, "max_window_layers": 21, "model_type": "qwen2", "num_attention_heads": 12,
             "num_hidden_layers": 28, "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 10000, "sliding_window": 4096,
             "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.44.0", "use_cache": true,
             "use_mrope": false, "use_sliding_window": false, "vocab_size": 151936}
            """);
        Assert.Equal((128, 6, true, false), (qwen2.HeadDim, qwen2.KvGroups, qwen2.QkvBias, qwen2.OProjBias));
        var llama = (DenseConfig)CausalLMRegistry.ParseConfig("""
            {"architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 128000,
             "eos_token_id": 128001, "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
             "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama", "num_attention_heads": 32,
             "num_hidden_layers": 32, "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
             "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0, "original_max_position_embeddings": 8192,
                              "rope_type": "llama3"},
             "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16", "use_cache": true, "vocab_size": 128256}
            """);
        Assert.Equal((128, 4, "llama3", 8192), (llama.HeadDim, llama.KvGroups, llama.Rope.Type, llama.Rope.OriginalMaxPositionEmbeddings));
        var qwen3 = (DenseConfig)CausalLMRegistry.ParseConfig("""
            {"architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 151643,
             "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu", "hidden_size": 1024, "initializer_range": 0.02,
             "intermediate_size": 3072, "max_position_embeddings": 40960, "max_window_layers": 28, "model_type": "qwen3",
             "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8, "rms_norm_eps": 1e-06,
             "rope_scaling": null, "rope_theta": 1000000, "sliding_window": null, "tie_word_embeddings": true,
             "torch_dtype": "bfloat16", "use_cache": true, "use_sliding_window": false, "vocab_size": 151936}
            """);
        Assert.Equal((128, 2, true, true), (qwen3.HeadDim, qwen3.KvGroups, qwen3.QkNorm, qwen3.TieWordEmbeddings));
        Assert.Equal("default", qwen3.Rope.Type);
        var moe = (DenseConfig)CausalLMRegistry.ParseConfig("""
            {"architectures": ["Qwen3MoeForCausalLM"], "attention_bias": false, "bos_token_id": 151643, "decoder_sparse_step": 1,
             "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02,
             "intermediate_size": 6144, "max_position_embeddings": 40960, "max_window_layers": 48, "mlp_only_layers": [],
             "model_type": "qwen3_moe", "moe_intermediate_size": 768, "norm_topk_prob": true, "num_attention_heads": 32,
             "num_experts": 128, "num_experts_per_tok": 8, "num_hidden_layers": 48, "num_key_value_heads": 4,
             "output_router_logits": false, "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000.0,
             "router_aux_loss_coef": 0.001, "sliding_window": null, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
             "use_cache": true, "use_sliding_window": false, "vocab_size": 151936}
            """);
        Assert.Equal((128, 8, 128, 8, 768), (moe.HeadDim, moe.KvGroups, moe.NumExperts, moe.NumExpertsPerTok, moe.MoeIntermediateSize));
        Assert.True(moe.QkNorm && moe.NormTopkProb && Enumerable.Range(0, 48).All(moe.IsMoeLayer));
        var sparse2 = (DenseConfig)CausalLMRegistry.ParseConfig(Config("qwen3_moe",
            ""","num_experts": 4, "num_experts_per_tok": 2, "decoder_sparse_step": 2, "mlp_only_layers": [3]"""));
        Assert.Equal([false, true, false, false], Enumerable.Range(0, 4).Select(sparse2.IsMoeLayer));
        Assert.Contains("num_experts_per_tok (5) exceeds num_experts (4)", Assert.Throws<ModelConfigException>(() =>
            CausalLMRegistry.ParseConfig(Config("qwen3_moe", ""","num_experts": 4, "num_experts_per_tok": 5"""))).Message);
    }

    [Fact]
    public void UnknownTypesListTheSupportedOnes()
    {
        var unknown = Assert.Throws<ModelConfigException>(() => CausalLMRegistry.ParseConfig(Config("gpt2")));
        Assert.Contains("'gpt2' is not supported (supported: deepseek_v3, deepseek_v2, qwen2, llama, qwen3, qwen3_moe)",
            unknown.Message);
        Assert.Contains("no string 'model_type'", Assert.Throws<ModelConfigException>(() => CausalLMRegistry.ParseConfig("{}")).Message);
    }

    [Fact]
    public void RopeScalingReadsBothSpellingsAndEveryType()
    {
        var a = (DenseConfig)CausalLMRegistry.ParseConfig(Config("llama",
            ""","rope_theta": 500000, "rope_scaling": {"type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 16}"""));
        var b = (DenseConfig)CausalLMRegistry.ParseConfig(Config("llama",
            ""","rope_parameters": {"rope_type": "llama3", "rope_theta": 500000, "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 16}"""));
        Assert.Equal(a.Rope, b.Rope);
        Assert.Equal(500000, a.Rope.Theta);
        var linear = (DenseConfig)CausalLMRegistry.ParseConfig(Config("qwen2", ""","rope_scaling": {"rope_type": "linear", "factor": 2}"""));
        var plain = (DenseConfig)CausalLMRegistry.ParseConfig(Config("qwen2"));
        var lf = RotateHalfRope.InverseFrequencies(linear.Rope, 8).InvFreq;
        var pf = RotateHalfRope.InverseFrequencies(plain.Rope, 8).InvFreq;
        for (int j = 0; j < pf.Length; j++) Assert.Equal(pf[j] / 2, lf[j], 6);
        var thetaOnly = (DenseConfig)CausalLMRegistry.ParseConfig(Config("qwen3", ""","rope_parameters": {"rope_theta": 1000000}"""));
        Assert.Equal("default", thetaOnly.Rope.Type);
        Assert.Equal(1000000, thetaOnly.Rope.Theta);
        // llama3: frequencies whose wavelength exceeds the original length are divided by the factor, short ones kept.
        var l3 = RotateHalfRope.InverseFrequencies(a.Rope, 8).InvFreq;
        var l3Plain = RotateHalfRope.InverseFrequencies(a.Rope with { Type = "default" }, 8).InvFreq;
        Assert.Equal(l3Plain[^1] / 8, l3[^1], 9);
        Assert.True(l3[0] < l3Plain[0] && l3[0] > l3Plain[0] / 8);   // wavelength 2π lies in the blended band (4, 16)
    }

    [Theory]
    [InlineData(""","rope_scaling": {"type": "dynamic", "factor": 2}""", "'dynamic' is recognised but not implemented")]
    [InlineData(""","rope_scaling": {"rope_type": "longrope", "factor": 2}""", "'longrope' is recognised but not implemented")]
    [InlineData(""","rope_scaling": {"rope_type": "wobbly", "factor": 2}""", "'wobbly' is unknown (supported: default, linear, llama3, yarn)")]
    [InlineData(""","rope_scaling": {"factor": 2}""", "rope_scaling has no 'type' / 'rope_type'")]
    [InlineData(""","rope_scaling": {"type": "linear", "factor": 0}""", "rope_scaling.factor must be positive")]
    [InlineData(""","use_sliding_window": true, "sliding_window": 16, "max_window_layers": 0""", "use_sliding_window = true with sliding_window 16 < max_position_embeddings 64")]
    [InlineData(""","partial_rotary_factor": 0.5""", "partial_rotary_factor 0.5 is not implemented")]
    [InlineData(""","layer_types": ["sliding_attention"]""", "layer_types entry \"sliding_attention\" is not implemented")]
    [InlineData(",\"hidden_act\": \"gelu\"", "hidden_act 'gelu' is not supported")]
    [InlineData(""","num_key_value_heads": 3""", "num_attention_heads (4) must be a multiple of num_key_value_heads (3)")]
    public void RecognisedButUnimplementedValuesAreClearErrors(string extra, string message)
    {
        var e = Assert.Throws<ModelConfigException>(() => CausalLMRegistry.ParseConfig(Config("qwen2", extra)));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void SlidingWindowThatCoversTheContextOrIsOffIsAccepted()
    {
        CausalLMRegistry.ParseConfig(Config("qwen2", ""","use_sliding_window": true, "sliding_window": 64"""));
        CausalLMRegistry.ParseConfig(Config("qwen3", ""","use_sliding_window": true, "sliding_window": 16, "max_window_layers": 1"""));
        CausalLMRegistry.ParseConfig(Config("qwen2", ""","use_sliding_window": false, "sliding_window": 16"""));
        var e = Assert.Throws<ModelConfigException>(() => CausalLMRegistry.ParseConfig(Config("llama", ""","mlp_bias": true""")));
        Assert.Contains("mlp_bias = true is not implemented", e.Message);
    }

    [Fact]
    public void MissingOrMisShapedTensorsNameTheTensorAndTheExpectedShape()
    {
        var dir = TempDir();
        try
        {
            var src = Fixture("qwen2-tiny-ref");
            File.Copy(Path.Combine(src, "config.json"), Path.Combine(dir, "config.json"));
            using (var f = SafetensorsFile.Open(Path.Combine(src, "model.safetensors")))
            {
                var tensors = f.Entries.Where(e => e.Name != "model.layers.1.self_attn.k_proj.bias")
                    .Select(e => new SafetensorsTensor(e.Name, e.DType, e.Shape, ToBytes(f.ReadFloat32(e.Name)))).ToList();
                SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors);
            }
            var missing = Assert.Throws<CheckpointMismatchException>(() => CausalLMRegistry.Load(dir));
            Assert.Contains("'model.layers.1.self_attn.k_proj.bias' is missing (the model expects shape [16])", missing.Message);

            using (var f = SafetensorsFile.Open(Path.Combine(src, "model.safetensors")))
            {
                var tensors = f.Entries.Select(e => e.Name == "model.norm.weight"
                    ? new SafetensorsTensor(e.Name, e.DType, [31], ToBytes(new float[31]))
                    : new SafetensorsTensor(e.Name, e.DType, e.Shape, ToBytes(f.ReadFloat32(e.Name)))).ToList();
                SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors);
            }
            var shape = Assert.Throws<CheckpointMismatchException>(() => CausalLMRegistry.Load(dir));
            Assert.Contains("'model.norm.weight' has shape [31], the model expects [32]", shape.Message);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private static byte[] ToBytes(float[] data)
    {
        var bytes = new byte[data.Length * sizeof(float)];
        Buffer.BlockCopy(data, 0, bytes, 0, bytes.Length);
        return bytes;
    }

    [Theory]
    [InlineData("qwen2-tiny-ref")]
    [InlineData("deepseek-v3-tiny-yarn")]
    public void GenerationBeyondMaxPositionEmbeddingsIsAnError(string fixture)
    {
        using var model = CausalLMRegistry.Load(Fixture(fixture));
        int maxPos = model.Config.MaxPositionEmbeddings;
        var prompt = new long[10];
        var fits = TextGeneration.Generate(model, [prompt], new GenerationOptions { MaxNewTokens = maxPos - 10, Temperature = 0, EosTokenIds = [] }, new Generator(1));
        Assert.Equal(maxPos - 10, fits.Tokens[0].Length);
        var e = Assert.Throws<ArgumentException>(() =>
            TextGeneration.Generate(model, [prompt], new GenerationOptions { MaxNewTokens = maxPos - 9, Temperature = 0 }, new Generator(1)));
        Assert.Contains($"prompt (10 tokens) + max_new_tokens ({maxPos - 9}) = {maxPos + 1} positions, beyond the model's max_position_embeddings {maxPos}", e.Message);
        Assert.Contains("max_position_embeddings", Assert.Throws<ArgumentException>(() => LogitsRunner.Run(model, new long[maxPos + 1], 1, maxPos + 1)).Message);
    }
}
