using NativeReasoner.Kernels.Quant;
using NativeReasoner.Model;
using NativeReasoner.Nn;
using Xunit;

namespace NativeReasoner.Tests.Model;

/// <summary>
/// The weight bytes a batch-1 decode step reads per token (the numerator of the compare script's bandwidth bound),
/// counted by hand from the configs: a DeepSeek-V3 MoE reads its top-k routed experts, not all of them, and one row of
/// its untied embedding; a tied qwen3_moe reads its embedding table whole as the head; packing shrinks each part to
/// the packed rows' bytes.
/// </summary>
public sealed class DecodeWeightTrafficTests
{
    // The packed-model tests' two-layer DeepSeek-V3 (dense layer 0, MoE layer 1 with 8 experts, k = 2).
    private const string DeepseekV3 = NativeReasoner.Tests.Quant.PackedModelTests.DeepseekV3;

    // Layer 0 dense (mlp_only_layers), layer 1 MoE of 4 experts of 256 (k = 2); tied embedding.
    private const string Qwen3Moe = """
        {"model_type": "qwen3_moe", "vocab_size": 300, "hidden_size": 256, "intermediate_size": 512,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64,
         "max_position_embeddings": 128, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": true,
         "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 256, "norm_topk_prob": true,
         "decoder_sparse_step": 1, "mlp_only_layers": [0]}
        """;

    private static ICausalLM Build(string json) => CausalLMRegistry.ParseConfig(json).Build(new Generator(1));

    /// <summary>The DeepSeek-V3 config's non-routed weights, in floats: attention, norms, dense MLP, shared expert,
    /// router, head.</summary>
    private const long DeepseekDenseFloats =
        // q_a, q_a_norm, q_b, kv_a, kv_norm, kv_b, o of both layers
        2 * (256 * 256 + 256 + 192 * 256 + 288 * 256 + 256 + 384 * 256 + 256 * 256)
        + 2 * 2 * 256                                                          // input / post-attention norms
        + 3 * 512 * 256                                                        // layer 0's dense SwiGLU
        + 3 * 256 * 256                                                        // the shared expert
        + 8 * 256 + 8                                                          // router weight and correction bias
        + 256                                                                  // final norm
        + 300 * 256;                                                           // lm_head

    [Fact]
    public void DeepseekReadsTopKExpertsAndOneEmbeddingRow()
    {
        using var model = Build(DeepseekV3);
        var bytes = DecodeWeightTraffic.PerToken(model);
        Assert.Equal(DeepseekDenseFloats * 4, bytes.Dense);
        Assert.Equal(2L * 3 * 256 * 256 * 4, bytes.Routed);                  // 2 of the 8 experts, fp32
        Assert.Equal(256L * 4, bytes.EmbeddingRow);
        Assert.Equal(bytes.Dense + bytes.Routed + bytes.EmbeddingRow, bytes.Total);
    }

    [Fact]
    public void PackedExpertsCountTheirPackedRows()
    {
        using var model = Build(DeepseekV3);
        PackedWeights.Pack((Module)model, QuantFormat.Q8_0);
        var bytes = DecodeWeightTraffic.PerToken(model);
        // Q8_0: 34 bytes per 32 weights; each expert matrix has K = 256 (gate/up) or 256 (down) → 8 blocks a row.
        Assert.Equal(2L * 3 * 256 * (8 * 34), bytes.Routed);
        Assert.True(bytes.Dense < DeepseekDenseFloats * 4 / 3, $"packed dense part {bytes.Dense} bytes");
    }

    [Fact]
    public void TiedEmbeddingIsReadWholeAsTheHead()
    {
        using var model = Build(Qwen3Moe);
        var bytes = DecodeWeightTraffic.PerToken(model);
        Assert.Equal(0, bytes.EmbeddingRow);
        Assert.Equal(2L * 3 * 256 * 256 * 4, bytes.Routed);                  // 2 of the 4 experts
        long attention = 256 * 256 + 2 * 64 * 256 * 2 + 256 * 256 + 2 * 64;  // q, k + v, o, q/k norms (head_dim 64)
        long dense = 2 * attention + 2 * 2 * 256 + 3 * 512 * 256 + 4 * 256 + 256 + 300 * 256;
        Assert.Equal(dense * 4, bytes.Dense);
    }

    [Fact]
    public void ExpertsWithoutTopKAreAClearError()
    {
        using var model = Build(DeepseekV3);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => DecodeWeightTraffic.PerToken((Module)model, 0));
        Assert.Contains("experts per token", e.Message);
        e = Assert.Throws<ArgumentOutOfRangeException>(() => DecodeWeightTraffic.PerToken((Module)model, 9));
        Assert.Contains("holds 8 experts", e.Message);
    }
}
