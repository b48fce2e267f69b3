// Source: HF transformers models/deepseek_v3/configuration_deepseek_v3.py (and deepseek_v2's).
namespace NativeReasoner.Model;

/// <summary>The DeepSeek-V3 config seen through the family-neutral <see cref="ICausalLMConfig"/>.</summary>
public sealed partial record DeepseekV3Config
{
    public const string ModelTypeName = "deepseek_v3";

    /// <summary>DeepSeek-V2 (V2-Lite, V2, V2.5): the same MLA + DeepSeekMoE model with the V2 router.</summary>
    public const string V2ModelTypeName = "deepseek_v2";

    /// <summary>config.json's model_type: <see cref="ModelTypeName"/> or <see cref="V2ModelTypeName"/>.</summary>
    public string ModelType { get; init; } = ModelTypeName;

    /// <summary>True for deepseek_v2: softmax router without a correction bias (see <see cref="MoeGate"/>).</summary>
    public bool IsV2 => ModelType == V2ModelTypeName;

    /// <summary>
    /// Whether the router holds an e_score_correction_bias: every deepseek_v3 router registers one (HF does, even
    /// when it is unused); deepseek_v2 checkpoints have none.
    /// </summary>
    public bool HasScoreCorrectionBias => !IsV2;

    public ICausalLMConfig ForTokenizer(int vocabSize, long eosId, long? bosId, long? padId) =>
        (this with
        {
            VocabSize = Math.Max(VocabSize, vocabSize),
            EosTokenIds = [eosId],
            BosTokenId = bosId,
            PadTokenId = padId,
        }).Validate();

    public ICausalLMConfig WithMaxPositionEmbeddings(int positions) =>
        (this with { MaxPositionEmbeddings = positions }).Validate();

    public ICausalLM Build(Generator gen, Device? device = null) => new DeepseekV3ForCausalLM(this, gen, device);
}
