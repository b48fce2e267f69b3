using System.Text.Json;
using NativeReasoner.Model.Dense;

namespace NativeReasoner.Model.Qwen3;

/// <summary>
/// <c>model_type: qwen3</c> (dense Qwen3 and DeepSeek-R1-0528-Qwen3-8B), after HF's configuration_qwen3.py /
/// modeling_qwen3.py: GQA with an explicit head_dim (not hidden / heads), q_norm and k_norm (RMSNorm over
/// head_dim, per head, before RoPE), biases only with attention_bias (then on q, k, v and o), tied embeddings in
/// the small models.
/// </summary>
public static class Qwen3Family
{
    public const string ModelType = "qwen3";

    /// <summary>HF Qwen3Config's defaults.</summary>
    public static DenseConfig Defaults => new()
    {
        ModelType = ModelType, VocabSize = 151936, HiddenSize = 4096, IntermediateSize = 22016, NumHiddenLayers = 32,
        NumAttentionHeads = 32, NumKeyValueHeads = 32, HeadDim = 128, MaxPositionEmbeddings = 32768, RmsNormEps = 1e-6,
        QkNorm = true, SlidingWindow = 4096, MaxWindowLayers = 28, BosTokenId = null, EosTokenIds = [],
    };

    public static DenseConfig FromJson(JsonElement root)
    {
        // head_dim defaults to 128 (HF's Qwen3Config), not hidden / heads.
        var c = DenseConfig.ReadCommon(root, Defaults) with { HeadDim = ConfigFields.Int(root, "head_dim", 128) };
        bool bias = ConfigFields.Bool(root, "attention_bias", false);
        return (DenseConfig.ReadSlidingWindow(root, c) with { QkvBias = bias, OProjBias = bias }).Validate();
    }
}
