// Source: llama.cpp's deepseek2 architecture: the keys convert_hf_to_gguf.py (DeepseekV2Model.set_gguf_parameters)
// writes and llama_model_deepseek2::load_arch_hparams reads (attention.key_length_mla / value_length_mla with the MLA
// split of kv_b, q_lora_rank 0 = q_proj, leading_dense_block_count, expert_gating_func 1 softmax / 2 sigmoid,
// rope.scaling.yarn_log_multiplier = 0.1 · mscale_all_dim), checked against the strings of LLamaSharp 0.30.0's
// libllama.so.
using System.Text;
using System.Text.Json;

namespace NativeReasoner.Model.Gguf;

/// <summary>
/// DeepSeek-V2/V3 (HF deepseek_v3 / deepseek_v2) ↔ GGUF's deepseek2 metadata. Written as llama.cpp's converter writes
/// MLA files: the attention is MQA over the latent (head_count_kv 1, key_length kv_lora_rank + rope dims,
/// value_length kv_lora_rank) and the per-head sizes go under *_mla. What llama.cpp has no key for (the router's
/// top-k method, the config's model_type, YaRN's cos/sin mscale) goes under <see cref="Prefix"/> so the engine reads
/// its own files back exactly; files from elsewhere get llama.cpp's meaning (an exp_probs_b tensor = noaux_tc).
/// </summary>
public static class DeepseekGgufConfig
{
    public const string Architecture = "deepseek2";
    public const string Prefix = "nativereasoner.deepseek.";

    private const int GatingSoftmax = 1, GatingSigmoid = 2; // llama_expert_gating_func_type

    /// <summary>Adds the deepseek2 keys for <paramref name="c"/>; what llama.cpp cannot run is an error naming it.
    /// Returns notes on settings llama.cpp reads differently.</summary>
    public static IReadOnlyList<string> AddModelKeys(DeepseekV3Config c, GgufMetadata m)
    {
        const string a = Architecture;
        var notes = new List<string>();
        bool anyMoe = Enumerable.Range(0, c.NumHiddenLayers).Any(c.IsMoeLayer);
        if (anyMoe && c.MoeLayerFreq != 1)
            throw new ModelConfigException($"config: moe_layer_freq {c.MoeLayerFreq} cannot be exported to GGUF: " +
                "deepseek2 makes every layer after leading_dense_block_count an MoE layer (expected 1)");
        if (anyMoe && c.TopkMethod == "group_limited_greedy" && c.NGroup > 1)
            notes.Add("topk_method group_limited_greedy: llama.cpp scores an expert group by its top-2 sum (noaux_tc's " +
                "rule), not by its maximum; its routing can differ from this engine's");
        if (c.RmsNormEps != 1e-6)
            notes.Add($"rms_norm_eps {c.RmsNormEps}: llama.cpp also applies it to q_a_layernorm and kv_a_layernorm, " +
                "which HF's DeepSeek code fixes at 1e-6");
        m.Add(GgufFormat.ArchitectureKey, a);
        m.Add($"{a}.context_length", (uint)c.MaxPositionEmbeddings);
        m.Add($"{a}.embedding_length", (uint)c.HiddenSize);
        m.Add($"{a}.block_count", (uint)c.NumHiddenLayers);
        m.Add($"{a}.feed_forward_length", (uint)c.IntermediateSize);
        m.Add($"{a}.attention.head_count", (uint)c.NumAttentionHeads);
        // MLA as llama.cpp runs it absorbed: one latent "KV head" of kv_lora_rank + rope dims.
        m.Add($"{a}.attention.head_count_kv", 1u);
        m.Add($"{a}.attention.key_length", (uint)(c.KvLoraRank + c.QkRopeHeadDim));
        m.Add($"{a}.attention.value_length", (uint)c.KvLoraRank);
        m.Add($"{a}.attention.key_length_mla", (uint)c.QkHeadDim);
        m.Add($"{a}.attention.value_length_mla", (uint)c.VHeadDim);
        m.Add($"{a}.attention.layer_norm_rms_epsilon", (float)c.RmsNormEps);
        m.Add($"{a}.attention.q_lora_rank", (uint)(c.QLoraRank ?? 0));
        m.Add($"{a}.attention.kv_lora_rank", (uint)c.KvLoraRank);
        m.Add($"{a}.rope.freq_base", (float)c.RopeTheta);
        m.Add($"{a}.rope.dimension_count", (uint)c.QkRopeHeadDim);
        m.Add($"{a}.vocab_size", (uint)c.VocabSize);
        m.Add($"{a}.leading_dense_block_count", (uint)(anyMoe ? c.FirstKDenseReplace : c.NumHiddenLayers));
        m.Add($"{a}.expert_feed_forward_length", (uint)c.MoeIntermediateSize);
        m.Add($"{a}.expert_shared_count", (uint)c.NSharedExperts);
        if (anyMoe)
        {
            m.Add($"{a}.expert_count", (uint)c.NRoutedExperts);
            m.Add($"{a}.expert_used_count", (uint)c.NumExpertsPerTok);
            m.Add($"{a}.expert_weights_scale", (float)c.RoutedScalingFactor);
            m.Add($"{a}.expert_weights_norm", c.NormTopkProb);
            m.Add($"{a}.expert_gating_func", (uint)(c.ScoringFunc == "sigmoid" ? GatingSigmoid : GatingSoftmax));
            if (c.TopkMethod != "greedy")
            {
                m.Add($"{a}.expert_group_count", (uint)c.NGroup);
                m.Add($"{a}.expert_group_used_count", (uint)c.TopkGroup);
            }
        }
        if (c.RopeScaling is { } rs)
        {
            m.Add($"{a}.rope.scaling.type", "yarn");
            m.Add($"{a}.rope.scaling.factor", (float)rs.Factor);
            m.Add($"{a}.rope.scaling.original_context_length", (uint)rs.OriginalMaxPositionEmbeddings);
            m.Add($"{a}.rope.scaling.yarn_beta_fast", (float)rs.BetaFast);
            m.Add($"{a}.rope.scaling.yarn_beta_slow", (float)rs.BetaSlow);
            // llama.cpp's converter stores 0.1 · mscale_all_dim here for deepseek2 and its loader divides by 0.1.
            m.Add($"{a}.rope.scaling.yarn_log_multiplier", (float)(0.1 * rs.MscaleAllDim));
            m.Add(Prefix + "rope_mscale", (float)rs.Mscale);
        }
        m.Add(Prefix + "model_type", c.ModelType);
        m.Add(Prefix + "topk_method", c.TopkMethod);
        return notes;
    }

    /// <summary>config.json text for the deepseek2 model in <paramref name="file"/>.</summary>
    public static string ToConfigJson(GgufFile file)
    {
        const string a = Architecture;
        var m = file.Metadata;
        var embed = file.GetTensor("token_embd.weight");
        if (embed.Dimensions.Length != 2)
            throw new GgufException(file.FilePath, "tensor 'token_embd.weight'", $"has shape {embed.ShapeText}, " +
                "expected [vocab_size, hidden_size]");
        int layers = m.GetCount($"{a}.block_count");
        int ropeDim = m.GetCount($"{a}.rope.dimension_count");
        // MLA files: the per-head sizes are the *_mla keys; older files hold them in key_length / value_length.
        bool mla = m.Contains($"{a}.attention.key_length_mla");
        string keyKey = mla ? $"{a}.attention.key_length_mla" : $"{a}.attention.key_length";
        int qkHead = m.GetCount(keyKey);
        int vHead = m.GetCount(mla ? $"{a}.attention.value_length_mla" : $"{a}.attention.value_length");
        if (qkHead <= ropeDim)
            throw new GgufException(file.FilePath, $"metadata key '{keyKey}'", $"is {qkHead}, expected more than " +
                $"rope.dimension_count {ropeDim} (qk_nope_head_dim + qk_rope_head_dim)");
        long qLora = m.GetInteger($"{a}.attention.q_lora_rank", 0, 0, int.MaxValue);
        int experts = (int)m.GetInteger($"{a}.expert_count", 0, 0, int.MaxValue);
        int leading = (int)m.GetInteger($"{a}.leading_dense_block_count", 0, 0, int.MaxValue);
        long gating = m.GetInteger($"{a}.expert_gating_func", GatingSoftmax, GatingSoftmax, GatingSigmoid);
        int groups = m.GetCount($"{a}.expert_group_count", 1);
        string? firstMoe = experts > 0 && leading < layers ? $"blk.{leading}.exp_probs_b.bias" : null;
        string topk = m.GetStringOrNull(Prefix + "topk_method")
            ?? (firstMoe is not null && file.Contains(firstMoe) ? "noaux_tc"
                : groups > 1 ? "group_limited_greedy" : "greedy");
        string modelType = m.GetStringOrNull(Prefix + "model_type")
            ?? (gating == GatingSigmoid ? DeepseekV3Config.ModelTypeName : DeepseekV3Config.V2ModelTypeName);

        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("model_type", modelType);
            w.WriteNumber("vocab_size", embed.Shape[0]);
            w.WriteNumber("hidden_size", m.GetCount($"{a}.embedding_length"));
            w.WriteNumber("intermediate_size", m.GetCount($"{a}.feed_forward_length"));
            w.WriteNumber("moe_intermediate_size", m.GetCount($"{a}.expert_feed_forward_length"));
            w.WriteNumber("num_hidden_layers", layers);
            w.WriteNumber("first_k_dense_replace", experts > 0 ? leading : layers);
            w.WriteNumber("moe_layer_freq", 1);
            int heads = m.GetCount($"{a}.attention.head_count");
            w.WriteNumber("num_attention_heads", heads);
            w.WriteNumber("num_key_value_heads", heads);
            w.WriteNumber("n_routed_experts", experts);
            w.WriteNumber("n_shared_experts", (int)m.GetInteger($"{a}.expert_shared_count", 0, 0, int.MaxValue));
            if (experts > 0)
            {
                w.WriteNumber("num_experts_per_tok", m.GetCount($"{a}.expert_used_count"));
                w.WriteNumber("n_group", groups);
                w.WriteNumber("topk_group", m.GetCount($"{a}.expert_group_used_count", 1));
                w.WriteNumber("routed_scaling_factor", m.Contains($"{a}.expert_weights_scale")
                    ? GgufModelConfig.Number(m, $"{a}.expert_weights_scale") : 1.0);
                w.WriteBoolean("norm_topk_prob", m.GetBool($"{a}.expert_weights_norm", false));
                w.WriteString("scoring_func", gating == GatingSigmoid ? "sigmoid" : "softmax");
                w.WriteString("topk_method", topk);
            }
            if (qLora > 0) w.WriteNumber("q_lora_rank", qLora); else w.WriteNull("q_lora_rank");
            w.WriteNumber("kv_lora_rank", m.GetCount($"{a}.attention.kv_lora_rank"));
            w.WriteNumber("qk_nope_head_dim", qkHead - ropeDim);
            w.WriteNumber("qk_rope_head_dim", ropeDim);
            w.WriteNumber("v_head_dim", vHead);
            w.WriteNumber("rms_norm_eps", GgufModelConfig.Number(m, $"{a}.attention.layer_norm_rms_epsilon"));
            w.WriteNumber("rope_theta", m.Contains($"{a}.rope.freq_base")
                ? GgufModelConfig.Number(m, $"{a}.rope.freq_base") : 10000.0);
            w.WriteNumber("max_position_embeddings", m.GetCount($"{a}.context_length"));
            w.WriteBoolean("tie_word_embeddings", !file.Contains("output.weight"));
            w.WriteString("hidden_act", "silu");
            WriteRopeScaling(w, file);
            if (m.Contains("tokenizer.ggml.bos_token_id"))
                w.WriteNumber("bos_token_id", m.GetInteger("tokenizer.ggml.bos_token_id", 0, int.MaxValue));
            else w.WriteNull("bos_token_id");
            if (m.Contains("tokenizer.ggml.eos_token_id"))
                w.WriteNumber("eos_token_id", m.GetInteger("tokenizer.ggml.eos_token_id", 0, int.MaxValue));
            if (m.Contains("tokenizer.ggml.padding_token_id"))
                w.WriteNumber("pad_token_id", m.GetInteger("tokenizer.ggml.padding_token_id", 0, int.MaxValue));
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    private static void WriteRopeScaling(Utf8JsonWriter w, GgufFile file)
    {
        const string a = Architecture;
        var m = file.Metadata;
        string type = m.GetStringOrNull($"{a}.rope.scaling.type") ?? "none";
        if (type == "none") return;
        if (type != "yarn")
            throw new GgufException(file.FilePath, $"metadata key '{a}.rope.scaling.type'",
                $"is '{type}', expected none or yarn (DeepSeek's rope scaling)");
        double Num(string key, double fallback) =>
            m.Contains(key) ? GgufModelConfig.Number(m, key) : fallback;
        double mscaleAll = Num($"{a}.rope.scaling.yarn_log_multiplier", 0) / 0.1;
        // 0.1 · m went through float32: take the shortest decimal of m that rounds back to it.
        mscaleAll = double.Parse(((float)mscaleAll).ToString("R", System.Globalization.CultureInfo.InvariantCulture),
            System.Globalization.CultureInfo.InvariantCulture);
        w.WriteStartObject("rope_scaling");
        w.WriteString("type", "yarn");
        w.WriteNumber("factor", GgufModelConfig.Number(m, $"{a}.rope.scaling.factor"));
        w.WriteNumber("original_max_position_embeddings",
            m.GetCount($"{a}.rope.scaling.original_context_length"));
        w.WriteNumber("beta_fast", Num($"{a}.rope.scaling.yarn_beta_fast", 32));
        w.WriteNumber("beta_slow", Num($"{a}.rope.scaling.yarn_beta_slow", 1));
        w.WriteNumber("mscale", Num(Prefix + "rope_mscale", mscaleAll == 0 ? 1 : mscaleAll));
        w.WriteNumber("mscale_all_dim", mscaleAll);
        w.WriteEndObject();
    }
}
