using System.Globalization;

namespace NativeReasoner.Model;

/// <summary>
/// Upper bounds on the sizes a config may declare, checked when the config is read (config.json or GGUF metadata), so
/// an absurd value (hidden_size 10^9, a vocabulary of 2^31) is an error naming the key and the allowed range instead of
/// an allocation failure deep in the model build. Each bound is far above every released model (the largest known
/// values in brackets) and low enough that one weight matrix stays addressable.
/// </summary>
public static class ConfigLimits
{
    /// <summary>vocab_size [DeepSeek-V3: 129280; Gemma: 262144].</summary>
    public const int MaxVocabSize = 1 << 22;

    /// <summary>hidden_size [Llama 3.1 405B: 16384].</summary>
    public const int MaxHiddenSize = 1 << 16;

    /// <summary>intermediate_size, moe_intermediate_size [Llama 3.1 405B: 53248].</summary>
    public const int MaxIntermediateSize = 1 << 18;

    /// <summary>num_hidden_layers [Llama 3.1 405B: 126].</summary>
    public const int MaxLayers = 1 << 12;

    /// <summary>num_attention_heads, num_key_value_heads [DeepSeek-V3: 128].</summary>
    public const int MaxHeads = 1 << 12;

    /// <summary>head_dim and DeepSeek's per-head dims and ranks [DeepSeek-V3 kv_lora_rank: 512, q_lora_rank: 1536].
    /// </summary>
    public const int MaxHeadDim = 1 << 14;

    /// <summary>max_position_embeddings and rope_scaling.original_max_position_embeddings [Llama 4 Scout: 10M].</summary>
    public const int MaxPositions = 1 << 26;

    /// <summary>num_experts / n_routed_experts [DeepSeek-V3: 256; Qwen3-MoE: 128].</summary>
    public const int MaxExperts = 1 << 14;

    /// <summary>Throws a <see cref="ModelConfigException"/> naming <paramref name="name"/> unless
    /// <paramref name="value"/> ≤ <paramref name="max"/> (the lower bounds are the configs' own checks).</summary>
    public static void AtMost(string where, string name, long value, long max)
    {
        if (value > max)
            throw new ModelConfigException(string.Create(CultureInfo.InvariantCulture,
                $"{where}: {name} is {value}, outside the supported range [1, {max}]"));
    }
}
