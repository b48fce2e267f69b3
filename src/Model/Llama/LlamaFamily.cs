using System.Text.Json;
using NativeReasoner.Model.Dense;

namespace NativeReasoner.Model.Llama;

/// <summary>
/// <c>model_type: llama</c> (Llama 2/3/3.1/3.2 and the DeepSeek-R1-Distill-Llama models), after HF's
/// configuration_llama.py / modeling_llama.py: GQA, no biases unless attention_bias (then on q, k, v and o),
/// rotate-half RoPE with optional <c>llama3</c>/<c>linear</c>/<c>yarn</c> scaling, optionally tied embeddings.
/// </summary>
public static class LlamaFamily
{
    public const string ModelType = "llama";

    /// <summary>HF LlamaConfig's defaults (Llama-2-7B shapes).</summary>
    public static DenseConfig Defaults => new()
    {
        ModelType = ModelType, VocabSize = 32000, HiddenSize = 4096, IntermediateSize = 11008, NumHiddenLayers = 32,
        NumAttentionHeads = 32, NumKeyValueHeads = 32, HeadDim = 128, MaxPositionEmbeddings = 2048, RmsNormEps = 1e-6,
        BosTokenId = 1, EosTokenIds = [2],
    };

    public static DenseConfig FromJson(JsonElement root)
    {
        var c = DenseConfig.ReadCommon(root, Defaults);
        bool bias = ConfigFields.Bool(root, "attention_bias", false);
        if (ConfigFields.Bool(root, "mlp_bias", false))
            throw new ModelConfigException("config (llama): mlp_bias = true is not implemented (the MLP projections " +
                "have no bias)");
        if (ConfigFields.Int(root, "pretraining_tp", 1) != 1)
            throw new ModelConfigException("config (llama): pretraining_tp other than 1 is not implemented");
        return (c with { QkvBias = bias, OProjBias = bias }).Validate();
    }
}
