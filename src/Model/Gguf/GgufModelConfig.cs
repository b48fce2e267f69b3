// Source: llama.cpp's GGUF model keys (gguf-py/gguf/constants.py, Keys.LLM / Keys.Attention / Keys.Rope) and what
// convert_hf_to_gguf.py writes for LlamaModel, Qwen2Model, Qwen3Model and Qwen3MoeModel from HF's config.json.
using System.Globalization;
using System.Text;
using System.Text.Json;
using NativeReasoner.Model.Dense;

namespace NativeReasoner.Model.Gguf;

/// <summary>
/// The model hyper-parameters of a GGUF file ↔ HF config.json. Reading builds config.json text and lets
/// <see cref="CausalLMRegistry.ParseConfig"/> validate it, so a GGUF model and an HF directory are checked the same
/// way.
/// </summary>
public static class GgufModelConfig
{
    /// <summary>GGUF general.architecture → HF model_type, for the architectures this engine reads and
    /// writes.</summary>
    public static readonly IReadOnlyDictionary<string, string> ModelTypes = new Dictionary<string, string>
    {
        ["llama"] = "llama",
        ["qwen2"] = "qwen2",
        ["qwen3"] = "qwen3",
        ["qwen3moe"] = "qwen3_moe",
    };

    private static string SupportedArchitectures =>
        string.Join(", ", ModelTypes.Keys.Append(DeepseekGgufConfig.Architecture));

    /// <summary>
    /// config.json text for the model in <paramref name="file"/>. <paramref name="tied"/>: the file has no
    /// output.weight
    /// (the head reuses token_embd); <paramref name="vocabSize"/> comes from token_embd's shape.
    /// </summary>
    public static string ToConfigJson(GgufFile file)
    {
        var m = file.Metadata;
        string arch = m.GetString(GgufFormat.ArchitectureKey);
        if (arch == DeepseekGgufConfig.Architecture) return DeepseekGgufConfig.ToConfigJson(file);
        if (!ModelTypes.TryGetValue(arch, out var modelType))
            throw new GgufException(file.FilePath, $"metadata key '{GgufFormat.ArchitectureKey}'",
                $"is '{arch}', expected one of {SupportedArchitectures}");
        var embed = file.GetTensor("token_embd.weight");
        if (embed.Dimensions.Length != 2)
            throw new GgufException(file.FilePath, "tensor 'token_embd.weight'", $"has shape {embed.ShapeText}, " +
                "expected [vocab_size, hidden_size]");
        int hidden = m.GetCount($"{arch}.embedding_length");
        int heads = m.GetCount($"{arch}.attention.head_count");
        int headDim = m.GetCount($"{arch}.attention.key_length", hidden / heads);
        int valueDim = m.GetCount($"{arch}.attention.value_length", headDim);
        if (valueDim != headDim)
            throw new GgufException(file.FilePath, $"metadata key '{arch}.attention.value_length'",
                $"is {valueDim}, expected the key length {headDim} (one head_dim)");

        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("model_type", modelType);
            w.WriteNumber("vocab_size", embed.Shape[0]);
            w.WriteNumber("hidden_size", hidden);
            w.WriteNumber("num_hidden_layers", m.GetCount($"{arch}.block_count"));
            w.WriteNumber("num_attention_heads", heads);
            w.WriteNumber("num_key_value_heads", m.GetCount($"{arch}.attention.head_count_kv", heads));
            w.WriteNumber("head_dim", headDim);
            w.WriteNumber("rms_norm_eps", Number(m, $"{arch}.attention.layer_norm_rms_epsilon"));
            w.WriteNumber("rope_theta", m.Contains($"{arch}.rope.freq_base")
                ? Number(m, $"{arch}.rope.freq_base") : 10000.0);
            w.WriteNumber("max_position_embeddings", m.GetCount($"{arch}.context_length"));
            w.WriteBoolean("tie_word_embeddings", !file.Contains("output.weight"));
            w.WriteString("hidden_act", "silu");
            bool qkvBias = file.Contains("blk.0.attn_q.bias");
            if (modelType != "qwen2")
                w.WriteBoolean("attention_bias", qkvBias || file.Contains("blk.0.attn_output.bias"));
            if (modelType == "qwen3_moe")
            {
                int expertFf = m.GetCount($"{arch}.expert_feed_forward_length");
                w.WriteNumber("intermediate_size", m.GetCount($"{arch}.feed_forward_length", expertFf));
                w.WriteNumber("num_experts", m.GetCount($"{arch}.expert_count"));
                w.WriteNumber("num_experts_per_tok", m.GetCount($"{arch}.expert_used_count"));
                w.WriteNumber("moe_intermediate_size", expertFf);
                w.WriteBoolean("norm_topk_prob", m.GetBool($"{arch}.expert_weights_norm", true));
            }
            else w.WriteNumber("intermediate_size", m.GetCount($"{arch}.feed_forward_length"));
            WriteRopeScaling(w, file, arch);
            if (m.Contains("tokenizer.ggml.bos_token_id"))
                w.WriteNumber("bos_token_id", m.GetInteger("tokenizer.ggml.bos_token_id", 0, int.MaxValue));
            if (m.Contains("tokenizer.ggml.eos_token_id"))
                w.WriteNumber("eos_token_id", m.GetInteger("tokenizer.ggml.eos_token_id", 0, int.MaxValue));
            if (m.Contains("tokenizer.ggml.padding_token_id"))
                w.WriteNumber("pad_token_id", m.GetInteger("tokenizer.ggml.padding_token_id", 0, int.MaxValue));
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    /// <summary>Keys this engine adds beside rope_freqs.weight so the llama3 parameters read back exactly.</summary>
    public const string Llama3Prefix = "nativereasoner.rope.llama3.";

    public const string RopeFreqsTensor = "rope_freqs.weight";

    /// <summary>
    /// llama3 rope as llama.cpp stores it: one divisor per rotated pair (1 for short wavelengths, factor for long
    /// ones, a smooth blend between), which ggml applies to each pair's frequency.
    /// </summary>
    public static float[] Llama3RopeFactors(int headDim, double theta, double factor, double lowFreqFactor,
        double highFreqFactor, int originalContext)
    {
        var r = new float[headDim / 2];
        double lowWavelen = originalContext / lowFreqFactor, highWavelen = originalContext / highFreqFactor;
        for (int i = 0; i < r.Length; i++)
        {
            double wavelen = 2 * Math.PI * Math.Pow(theta, 2.0 * i / headDim);
            if (wavelen < highWavelen) r[i] = 1;
            else if (wavelen > lowWavelen) r[i] = (float)factor;
            else
            {
                double smooth = (originalContext / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
                r[i] = (float)(1 / ((1 - smooth) / factor + smooth));
            }
        }
        return r;
    }

    private static void WriteRopeScaling(Utf8JsonWriter w, GgufFile file, string arch)
    {
        var m = file.Metadata;
        if (file.Contains(RopeFreqsTensor))
        {
            WriteLlama3(w, file, arch);
            return;
        }
        string type = m.GetStringOrNull($"{arch}.rope.scaling.type") ?? "none";
        if (type == "none") return;
        if (type is not ("linear" or "yarn"))
            throw new GgufException(file.FilePath, $"metadata key '{arch}.rope.scaling.type'",
                $"is '{type}', expected none, linear or yarn");
        w.WriteStartObject("rope_scaling");
        w.WriteString("rope_type", type);
        w.WriteNumber("factor", Number(m, $"{arch}.rope.scaling.factor"));
        if (type == "yarn")
            w.WriteNumber("original_max_position_embeddings",
                m.GetCount($"{arch}.rope.scaling.original_context_length"));
        w.WriteEndObject();
    }

    /// <summary>
    /// llama3 rope from rope_freqs.weight: the parameters this engine's export adds, or else Llama 3.x's (low 1,
    /// high 4, original 8192, factor = the largest divisor); either way the divisors they give must match the tensor.
    /// </summary>
    private static void WriteLlama3(Utf8JsonWriter w, GgufFile file, string arch)
    {
        var m = file.Metadata;
        var t = file.GetTensor(RopeFreqsTensor);
        int headDim = m.GetCount($"{arch}.attention.key_length",
            m.GetCount($"{arch}.embedding_length") / m.GetCount($"{arch}.attention.head_count"));
        string field = $"tensor '{RopeFreqsTensor}'";
        if (t.Type != GgmlType.F32 || t.Dimensions.Length != 1 || t.Dimensions[0] != headDim / 2)
            throw new GgufException(file.FilePath, field, $"is {t.Type} {t.ShapeText}, expected F32 [{headDim / 2}]");
        var stored = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(file.GetBytes(RopeFreqsTensor))
            .ToArray();
        double theta = m.Contains($"{arch}.rope.freq_base") ? Number(m, $"{arch}.rope.freq_base") : 10000.0;
        double factor = m.Contains(Llama3Prefix + "factor") ? Number(m, Llama3Prefix + "factor") : stored.Max();
        double low = m.Contains(Llama3Prefix + "low_freq_factor") ? Number(m, Llama3Prefix + "low_freq_factor") : 1;
        double high = m.Contains(Llama3Prefix + "high_freq_factor") ? Number(m, Llama3Prefix + "high_freq_factor") : 4;
        int original = m.GetCount(Llama3Prefix + "original_context_length", 8192);
        var expected = Llama3RopeFactors(headDim, theta, factor, low, high, original);
        for (int i = 0; i < expected.Length; i++)
            if (!(Math.Abs(stored[i] - expected[i]) <= 1e-5 * Math.Abs(expected[i])))
                throw new GgufException(file.FilePath, field, $"divisor {i} is {stored[i]}, but llama3 rope with " +
                    $"factor " +
                    $"{factor}, low_freq_factor {low}, high_freq_factor {high} and original context {original} gives " +
                    $"{expected[i]} (other llama3 parameters need the {Llama3Prefix}* keys)");
        w.WriteStartObject("rope_scaling");
        w.WriteString("rope_type", "llama3");
        w.WriteNumber("factor", factor);
        w.WriteNumber("low_freq_factor", low);
        w.WriteNumber("high_freq_factor", high);
        w.WriteNumber("original_max_position_embeddings", original);
        w.WriteEndObject();
    }

    /// <summary>
    /// A number as HF wrote it: GGUF keeps floats as float32, so the shortest decimal that rounds to that float32 is
    /// taken (1e-6 reads back as 1e-6, not 9.99999997e-07).
    /// </summary>
    internal static double Number(GgufMetadata m, string key)
    {
        if (m.TryGet(key, out var v) && v.Value is float f && float.IsFinite(f))
            return double.Parse(f.ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        return m.GetNumber(key);
    }

    /// <summary>GGUF's general.file_type (llama_ftype) for a file whose matrices are <paramref name="type"/>.</summary>
    public static uint FileType(GgmlType type) => type switch
    {
        GgmlType.F32 => 0,
        GgmlType.F16 => 1,
        GgmlType.Q4_0 => 2,
        GgmlType.Q8_0 => 7,
        GgmlType.Q4_K => 14, // MOSTLY_Q4_K_S: every matrix Q4_K
        GgmlType.Q6_K => 18,
        GgmlType.BF16 => 32,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "no llama file type"),
    };

    /// <summary>
    /// Adds the architecture keys for <paramref name="config"/> to <paramref name="metadata"/>; a setting GGUF (or
    /// llama.cpp) cannot express is a <see cref="ModelConfigException"/> naming it.
    /// </summary>
    public static string AddModelKeys(ICausalLMConfig config, GgufMetadata metadata)
    {
        if (config is not DenseConfig c)
            throw new ModelConfigException($"config: model_type '{config.ModelType}' cannot be exported to GGUF yet " +
                $"(supported: {string.Join(", ", ModelTypes.Values)})");
        string arch = ModelTypes.Single(kv => kv.Value == c.ModelType).Key;
        if (c.Rope.Type is not ("default" or "linear" or "yarn" or "llama3"))
            throw new ModelConfigException($"config: rope_scaling type '{c.Rope.Type}' cannot be exported to GGUF " +
                "yet (supported: none, linear, yarn, llama3)");
        if (c.Rope.Type == "yarn" && (c.Rope.AttentionFactor is not null || c.Rope.Mscale is not null ||
                                      c.Rope.MscaleAllDim is not null || c.Rope.BetaFast != 32 || c.Rope.BetaSlow != 1))
            throw new ModelConfigException("config: yarn rope_scaling with attention_factor, mscale or non-default " +
                "beta_fast/beta_slow cannot be expressed in GGUF's rope.scaling keys");
        if (c.UseSlidingWindow)
            throw new ModelConfigException("config: use_sliding_window true cannot be exported to GGUF");
        if (c.NumExperts > 0 && (c.DecoderSparseStep != 1 || c.MlpOnlyLayers.Count > 0))
            throw new ModelConfigException("config: qwen3_moe with decoder_sparse_step ≠ 1 or mlp_only_layers " +
                "cannot be exported to GGUF (every layer is an MoE layer there)");
        if (c.OProjBias && !c.QkvBias)
            throw new ModelConfigException("config: an o_proj bias without q/k/v biases cannot be exported to GGUF");
        metadata.Add(GgufFormat.ArchitectureKey, arch);
        metadata.Add($"{arch}.context_length", (uint)c.MaxPositionEmbeddings);
        metadata.Add($"{arch}.embedding_length", (uint)c.HiddenSize);
        metadata.Add($"{arch}.block_count", (uint)c.NumHiddenLayers);
        metadata.Add($"{arch}.feed_forward_length", (uint)c.IntermediateSize);
        metadata.Add($"{arch}.attention.head_count", (uint)c.NumAttentionHeads);
        metadata.Add($"{arch}.attention.head_count_kv", (uint)c.NumKeyValueHeads);
        metadata.Add($"{arch}.attention.key_length", (uint)c.HeadDim);
        metadata.Add($"{arch}.attention.value_length", (uint)c.HeadDim);
        metadata.Add($"{arch}.rope.dimension_count", (uint)c.HeadDim);
        metadata.Add($"{arch}.attention.layer_norm_rms_epsilon", (float)c.RmsNormEps);
        metadata.Add($"{arch}.rope.freq_base", (float)c.Rope.Theta);
        metadata.Add($"{arch}.vocab_size", (uint)c.VocabSize);
        if (c.Rope.Type == "llama3")
        {
            // llama.cpp reads only the rope_freqs.weight tensor (written by the exporter); these keys let this
            // engine recover the exact parameters.
            metadata.Add(Llama3Prefix + "factor", (float)c.Rope.Factor);
            metadata.Add(Llama3Prefix + "low_freq_factor", (float)c.Rope.LowFreqFactor);
            metadata.Add(Llama3Prefix + "high_freq_factor", (float)c.Rope.HighFreqFactor);
            metadata.Add(Llama3Prefix + "original_context_length", (uint)c.Rope.OriginalMaxPositionEmbeddings);
        }
        else if (c.Rope.Type != "default")
        {
            metadata.Add($"{arch}.rope.scaling.type", c.Rope.Type);
            metadata.Add($"{arch}.rope.scaling.factor", (float)c.Rope.Factor);
            if (c.Rope.Type == "yarn")
                metadata.Add($"{arch}.rope.scaling.original_context_length",
                    (uint)c.Rope.OriginalMaxPositionEmbeddings);
        }
        if (c.NumExperts > 0)
        {
            metadata.Add($"{arch}.expert_count", (uint)c.NumExperts);
            metadata.Add($"{arch}.expert_used_count", (uint)c.NumExpertsPerTok);
            metadata.Add($"{arch}.expert_feed_forward_length", (uint)c.MoeIntermediateSize);
            metadata.Add($"{arch}.expert_weights_norm", c.NormTopkProb);
        }
        return arch;
    }
}
