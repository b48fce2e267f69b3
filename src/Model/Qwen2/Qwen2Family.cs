using System.Text.Json;
using NativeReasoner.Model.Dense;

namespace NativeReasoner.Model.Qwen2;

/// <summary>
/// <c>model_type: qwen2</c> (Qwen2, Qwen2.5 and the DeepSeek-R1-Distill-Qwen models), after HF's
/// configuration_qwen2.py / modeling_qwen2.py: GQA with biases on q_proj, k_proj and v_proj (always) and none on
/// o_proj, rotate-half RoPE (optionally yarn-scaled), sliding-window fields that must leave the full context.
/// </summary>
public static class Qwen2Family
{
    public const string ModelType = "qwen2";

    /// <summary>HF Qwen2Config's defaults.</summary>
    public static DenseConfig Defaults => new()
    {
        ModelType = ModelType, VocabSize = 151936, HiddenSize = 4096, IntermediateSize = 22016, NumHiddenLayers = 32,
        NumAttentionHeads = 32, NumKeyValueHeads = 32, HeadDim = 128, MaxPositionEmbeddings = 32768, RmsNormEps = 1e-6,
        QkvBias = true, OProjBias = false, SlidingWindow = 4096, MaxWindowLayers = 28,
        BosTokenId = null, EosTokenIds = [],
    };

    public static DenseConfig FromJson(JsonElement root)
    {
        var c = DenseConfig.ReadCommon(root, Defaults);
        return DenseConfig.ReadSlidingWindow(root, c).Validate();
    }
}
