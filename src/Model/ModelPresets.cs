// Source: tiny configurations in the shape of the HF configs of each family (configuration_*.py defaults).
using NativeReasoner.Model.Dense;
using NativeReasoner.Model.Llama;
using NativeReasoner.Model.Qwen2;
using NativeReasoner.Model.Qwen3;
using NativeReasoner.Model.Qwen3Moe;

namespace NativeReasoner.Model;

/// <summary>
/// Named tiny configs of every family, for tests, <c>nr train --model-preset</c> and distillation students: the
/// DeepSeek-V3 presets (<see cref="DeepseekV3Config.PresetNames"/>) and small dense ones.
/// <list type="bullet">
/// <item><c>qwen2-tiny</c>: hidden 64, 2 layers, 4 query heads over 2 K/V heads (head 16), q/k/v biases.</item>
/// <item><c>llama-tiny</c>: the same shapes without biases, llama3 RoPE scaling ×4 over 64 positions.</item>
/// <item><c>qwen3-tiny</c>: head_dim 24 ≠ hidden / heads, q_norm/k_norm, tied embeddings.</item>
/// <item><c>qwen3-moe-tiny</c>: qwen3-tiny's attention; layer 0 dense, layer 1 sparse (16 experts of width 32,
/// top-4).</item>
/// </list>
/// </summary>
public static class ModelPresets
{
    public static IReadOnlyList<string> DensePresetNames =>
        ["qwen2-tiny", "llama-tiny", "qwen3-tiny", "qwen3-moe-tiny"];

    public static IReadOnlyList<string> Names => [.. DeepseekV3Config.PresetNames, .. DensePresetNames];

    public static ICausalLMConfig Get(string name) => name switch
    {
        "qwen2-tiny" => (Qwen2Family.Defaults with
        {
            VocabSize = 128,
            HiddenSize = 64,
            IntermediateSize = 128,
            NumHiddenLayers = 2,
            NumAttentionHeads = 4,
            NumKeyValueHeads = 2,
            HeadDim = 16,
            MaxPositionEmbeddings = 256,
            Rope = new RopeParameters { Theta = 1000000 },
        }).Validate(),
        "llama-tiny" => (LlamaFamily.Defaults with
        {
            VocabSize = 128,
            HiddenSize = 64,
            IntermediateSize = 128,
            NumHiddenLayers = 2,
            NumAttentionHeads = 4,
            NumKeyValueHeads = 2,
            HeadDim = 16,
            MaxPositionEmbeddings = 256,
            Rope = new RopeParameters
            {
                Type = "llama3", Theta = 500000, Factor = 4, LowFreqFactor = 1, HighFreqFactor = 4,
                OriginalMaxPositionEmbeddings = 64,
            },
        }).Validate(),
        "qwen3-tiny" => (Qwen3Family.Defaults with
        {
            VocabSize = 128,
            HiddenSize = 64,
            IntermediateSize = 128,
            NumHiddenLayers = 2,
            NumAttentionHeads = 4,
            NumKeyValueHeads = 2,
            HeadDim = 24,
            MaxPositionEmbeddings = 256,
            TieWordEmbeddings = true,
        }).Validate(),
        "qwen3-moe-tiny" => (Qwen3MoeFamily.Defaults with
        {
            VocabSize = 128,
            HiddenSize = 64,
            IntermediateSize = 128,
            NumHiddenLayers = 2,
            NumAttentionHeads = 4,
            NumKeyValueHeads = 2,
            HeadDim = 24,
            MaxPositionEmbeddings = 256,
            NumExperts = 16,
            NumExpertsPerTok = 4,
            MoeIntermediateSize = 32,
            NormTopkProb = true,
            MlpOnlyLayers = [0],
        }).Validate(),
        _ when DeepseekV3Config.PresetNames.Contains(name) => DeepseekV3Config.Preset(name),
        _ => throw new ModelConfigException($"unknown model preset '{name}' (known: {string.Join(", ", Names)})"),
    };
}
