using System.Text.Json;
using NativeReasoner.Model.Dense;
using NativeReasoner.Model.Qwen3;

namespace NativeReasoner.Model.Qwen3Moe;

/// <summary>
/// <c>model_type: qwen3_moe</c> (Qwen3-30B-A3B, Qwen3-235B-A22B), after HF's configuration_qwen3_moe.py /
/// modeling_qwen3_moe.py: Qwen3's attention (GQA, explicit head_dim, q_norm/k_norm) with a
/// <see cref="SparseMoeBlock"/> in every layer l with (l + 1) % decoder_sparse_step == 0 outside mlp_only_layers
/// (softmax router over all experts, top-k, renormalised only with norm_topk_prob, no shared expert). Experts are read
/// one by one; a fused gate_up_proj checkpoint is reported as unexpected tensors.
/// </summary>
public static class Qwen3MoeFamily
{
    public const string ModelType = "qwen3_moe";

    /// <summary>HF Qwen3MoeConfig's defaults.</summary>
    public static DenseConfig Defaults => Qwen3Family.Defaults with
    {
        ModelType = ModelType,
        HiddenSize = 2048,
        IntermediateSize = 6144,
        NumHiddenLayers = 24,
        NumAttentionHeads = 32,
        NumKeyValueHeads = 4,
        NumExperts = 128,
        NumExpertsPerTok = 8,
        MoeIntermediateSize = 768,
        NormTopkProb = false,
        DecoderSparseStep = 1,
    };

    public static DenseConfig FromJson(JsonElement root)
    {
        var d = Defaults;
        var c = DenseConfig.ReadCommon(root, d);
        bool bias = ConfigFields.Bool(root, "attention_bias", false);
        var mlpOnly = new List<int>();
        if (ConfigFields.Present(root, "mlp_only_layers", out var mo))
        {
            if (mo.ValueKind != JsonValueKind.Array)
                throw new ModelConfigException("config (qwen3_moe): mlp_only_layers must be a list");
            foreach (var l in mo.EnumerateArray())
            {
                if (l.ValueKind != JsonValueKind.Number || !l.TryGetInt32(out int layer))
                    throw new ModelConfigException(
                        $"config (qwen3_moe): mlp_only_layers must hold layer indices, got {mo.GetRawText()}");
                mlpOnly.Add(layer);
            }
        }
        return (DenseConfig.ReadSlidingWindow(root, c) with
        {
            QkvBias = bias,
            OProjBias = bias,
            NumExperts = ConfigFields.Int(root, "num_experts", d.NumExperts),
            NumExpertsPerTok = ConfigFields.Int(root, "num_experts_per_tok", d.NumExpertsPerTok),
            MoeIntermediateSize = ConfigFields.Int(root, "moe_intermediate_size", d.MoeIntermediateSize),
            NormTopkProb = ConfigFields.Bool(root, "norm_topk_prob", d.NormTopkProb),
            DecoderSparseStep = ConfigFields.Int(root, "decoder_sparse_step", d.DecoderSparseStep),
            MlpOnlyLayers = mlpOnly,
        }).Validate();
    }
}
