namespace NativeReasoner.Model;

/// <summary>The DeepSeek-V3 config seen through the family-neutral <see cref="ICausalLMConfig"/>.</summary>
public sealed partial record DeepseekV3Config
{
    public const string ModelTypeName = "deepseek_v3";

    public string ModelType => ModelTypeName;

    public ICausalLMConfig ForTokenizer(int vocabSize, long eosId, long? bosId, long? padId) =>
        (this with
        {
            VocabSize = Math.Max(VocabSize, vocabSize), EosTokenIds = [eosId], BosTokenId = bosId, PadTokenId = padId,
        }).Validate();

    public ICausalLMConfig WithMaxPositionEmbeddings(int positions) =>
        (this with { MaxPositionEmbeddings = positions }).Validate();

    public ICausalLM Build(Generator gen, Device? device = null) => new DeepseekV3ForCausalLM(this, gen, device);
}
