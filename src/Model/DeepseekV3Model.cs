// Source: HF transformers models/deepseek_v3/modeling_deepseek_v3.py DeepseekV3Model.
using NativeReasoner.Nn;

namespace NativeReasoner.Model;

/// <summary>The "model." part of the checkpoint: embed_tokens, layers, norm (no head).</summary>
public sealed class DeepseekV3Model : Module
{
    public TokenEmbedding EmbedTokens { get; }
    public ModuleList<DeepseekV3DecoderLayer> Layers { get; }
    public RmsNormLayer Norm { get; }

    public DeepseekV3Model(DeepseekV3Config c, Generator gen, Device? device = null)
    {
        EmbedTokens = RegisterModule("embed_tokens", new TokenEmbedding(c.VocabSize, c.HiddenSize, gen, (float)c.InitializerRange, device));
        Layers = RegisterModule("layers", new ModuleList<DeepseekV3DecoderLayer>());
        for (int l = 0; l < c.NumHiddenLayers; l++) Layers.Add(new DeepseekV3DecoderLayer(c, l, gen, device));
        Norm = RegisterModule("norm", new RmsNormLayer(c.HiddenSize, (float)c.RmsNormEps, device));
    }
}
