using System.Globalization;
using System.Text;
using System.Text.Json;
using static NativeReasoner.Model.Dense.ConfigFields;

namespace NativeReasoner.Model;

/// <summary>
/// The hyper-parameters of a DeepSeek-V3 model, under Hugging Face <c>DeepseekV3Config</c> names, with
/// HF's defaults (the 671B model). Read one from a config.json with <see cref="FromJson"/> /
/// <see cref="Load"/>, or take a named tiny preset from <see cref="Preset"/>. <see cref="Validate"/>
/// rejects values that cannot make a working model, with the field names in the message.
/// </summary>
public sealed partial record DeepseekV3Config : ICausalLMConfig
{
    public int VocabSize { get; init; } = 129280;
    public int HiddenSize { get; init; } = 7168;
    /// <summary>Width of the dense SwiGLU MLP of the first <see cref="FirstKDenseReplace"/> layers.</summary>
    public int IntermediateSize { get; init; } = 18432;
    /// <summary>Width of one routed expert (the shared experts are n_shared_experts × this, fused).</summary>
    public int MoeIntermediateSize { get; init; } = 2048;
    public int NumHiddenLayers { get; init; } = 61;
    public int FirstKDenseReplace { get; init; } = 3;
    /// <summary>Layer l ≥ first_k_dense_replace is MoE iff l % moe_layer_freq == 0 (DeepSeek remote code).</summary>
    public int MoeLayerFreq { get; init; } = 1;
    public int NumAttentionHeads { get; init; } = 128;
    /// <summary>Carried for HF compatibility; MLA has no separate KV heads (must equal the head count).</summary>
    public int NumKeyValueHeads { get; init; } = 128;
    public int NRoutedExperts { get; init; } = 256;
    public int NSharedExperts { get; init; } = 1;
    public int NumExpertsPerTok { get; init; } = 8;
    public int NGroup { get; init; } = 8;
    public int TopkGroup { get; init; } = 4;
    public double RoutedScalingFactor { get; init; } = 2.5;
    /// <summary>"sigmoid" (V3) or "softmax" (V2). HF ignores it and always uses sigmoid.</summary>
    public string ScoringFunc { get; init; } = "sigmoid";
    /// <summary>
    /// "noaux_tc" (bias-corrected, top-2-sum group score), "group_limited_greedy" (max group score, no bias) or
    /// "greedy" (top-k over all experts; n_group / topk_group unused).
    /// </summary>
    public string TopkMethod { get; init; } = "noaux_tc";
    public bool NormTopkProb { get; init; } = true;
    /// <summary>Rank of the query compression; null = no compression (q_proj). 0 is rejected (deepseek-v3-notes 14).</summary>
    public int? QLoraRank { get; init; } = 1536;
    public int KvLoraRank { get; init; } = 512;
    public int QkNopeHeadDim { get; init; } = 128;
    public int QkRopeHeadDim { get; init; } = 64;
    public int VHeadDim { get; init; } = 128;
    public string HiddenAct { get; init; } = "silu";
    public double RmsNormEps { get; init; } = 1e-6;
    public double RopeTheta { get; init; } = 10000.0;
    public RopeScaling? RopeScaling { get; init; }
    /// <summary>HF's flag: true = interleaved pairs (the official layout). Only true is supported.</summary>
    public bool RopeInterleave { get; init; } = true;
    public int MaxPositionEmbeddings { get; init; } = 4096;
    public bool TieWordEmbeddings { get; init; }
    public bool AttentionBias { get; init; }
    public double InitializerRange { get; init; } = 0.02;
    public long? BosTokenId { get; init; } = 0;
    /// <summary>One or more end-of-sequence ids (HF allows an int or a list).</summary>
    public IReadOnlyList<long> EosTokenIds { get; init; } = [1];
    public long? PadTokenId { get; init; }

    /// <summary>qk_nope_head_dim + qk_rope_head_dim: the per-head query/key width.</summary>
    public int QkHeadDim => QkNopeHeadDim + QkRopeHeadDim;

    /// <summary>True for the layers that use the MoE block, false for the dense SwiGLU ones.</summary>
    public bool IsMoeLayer(int layer) =>
        NRoutedExperts > 0 && layer >= FirstKDenseReplace && layer % Math.Max(MoeLayerFreq, 1) == 0;

    /// <summary>Values per token per layer of the compressed MLA cache: normalised latent + rotated k_pe.</summary>
    public int CacheWidthPerLayer => KvLoraRank + QkRopeHeadDim;

    /// <summary>The attention softmax scale: qk_head_dim^-0.5 · mscale(factor, mscale_all_dim)².</summary>
    public float SoftmaxScale => (float)Yarn.SoftmaxScale(this);

    // ------------------------------------------------------------------ validation

    /// <summary>Throws <see cref="ModelConfigException"/> naming the first inconsistent field(s).</summary>
    public DeepseekV3Config Validate()
    {
        void Positive(string name, double value)
        {
            if (!(value > 0)) throw new ModelConfigException($"config: {name} must be positive, got {value.ToString(CultureInfo.InvariantCulture)}");
        }
        if (ModelType != ModelTypeName && ModelType != V2ModelTypeName)
            throw new ModelConfigException($"config: model_type '{ModelType}' is not a DeepSeek MLA family " +
                $"(expected '{ModelTypeName}' or '{V2ModelTypeName}')");
        Positive("vocab_size", VocabSize);
        Positive("hidden_size", HiddenSize);
        Positive("num_hidden_layers", NumHiddenLayers);
        Positive("num_attention_heads", NumAttentionHeads);
        Positive("kv_lora_rank", KvLoraRank);
        Positive("qk_rope_head_dim", QkRopeHeadDim);
        Positive("v_head_dim", VHeadDim);
        Positive("rms_norm_eps", RmsNormEps);
        Positive("rope_theta", RopeTheta);
        Positive("max_position_embeddings", MaxPositionEmbeddings);
        const string where = "config";
        ConfigLimits.AtMost(where, "vocab_size", VocabSize, ConfigLimits.MaxVocabSize);
        ConfigLimits.AtMost(where, "hidden_size", HiddenSize, ConfigLimits.MaxHiddenSize);
        ConfigLimits.AtMost(where, "intermediate_size", IntermediateSize, ConfigLimits.MaxIntermediateSize);
        ConfigLimits.AtMost(where, "moe_intermediate_size", MoeIntermediateSize, ConfigLimits.MaxIntermediateSize);
        ConfigLimits.AtMost(where, "num_hidden_layers", NumHiddenLayers, ConfigLimits.MaxLayers);
        ConfigLimits.AtMost(where, "first_k_dense_replace", FirstKDenseReplace, ConfigLimits.MaxLayers);
        ConfigLimits.AtMost(where, "num_attention_heads", NumAttentionHeads, ConfigLimits.MaxHeads);
        ConfigLimits.AtMost(where, "kv_lora_rank", KvLoraRank, ConfigLimits.MaxHeadDim);
        ConfigLimits.AtMost(where, "q_lora_rank", QLoraRank ?? 0, ConfigLimits.MaxHeadDim);
        ConfigLimits.AtMost(where, "qk_nope_head_dim", QkNopeHeadDim, ConfigLimits.MaxHeadDim);
        ConfigLimits.AtMost(where, "qk_rope_head_dim", QkRopeHeadDim, ConfigLimits.MaxHeadDim);
        ConfigLimits.AtMost(where, "v_head_dim", VHeadDim, ConfigLimits.MaxHeadDim);
        ConfigLimits.AtMost(where, "max_position_embeddings", MaxPositionEmbeddings, ConfigLimits.MaxPositions);
        ConfigLimits.AtMost(where, "n_routed_experts", NRoutedExperts, ConfigLimits.MaxExperts);
        ConfigLimits.AtMost(where, "n_shared_experts", NSharedExperts, ConfigLimits.MaxExperts);
        if (QkNopeHeadDim < 0) throw new ModelConfigException($"config: qk_nope_head_dim must be ≥ 0, got {QkNopeHeadDim}");
        if (QkRopeHeadDim % 2 != 0)
            throw new ModelConfigException($"config: qk_rope_head_dim must be even (RoPE rotates pairs), got {QkRopeHeadDim}");
        if (QLoraRank is { } q && q <= 0)
            throw new ModelConfigException($"config: q_lora_rank must be positive or null (null = no query compression), got {q}");
        if (FirstKDenseReplace < 0) throw new ModelConfigException($"config: first_k_dense_replace must be ≥ 0, got {FirstKDenseReplace}");
        if (MoeLayerFreq <= 0) throw new ModelConfigException($"config: moe_layer_freq must be positive, got {MoeLayerFreq}");
        if (NumKeyValueHeads != NumAttentionHeads)
            throw new ModelConfigException($"config: num_key_value_heads ({NumKeyValueHeads}) must equal num_attention_heads ({NumAttentionHeads}); MLA has one latent shared by all heads");
        if (HiddenAct != "silu") throw new ModelConfigException($"config: hidden_act '{HiddenAct}' is not supported (only 'silu')");
        if (!RopeInterleave)
            throw new ModelConfigException("config: rope_interleave = false is not supported: DeepSeek-V3 weights are trained with interleaved RoPE pairs");
        if (AttentionBias) throw new ModelConfigException("config: attention_bias = true is not supported (DeepSeek-V3 has no attention biases)");

        bool anyDense = Enumerable.Range(0, NumHiddenLayers).Any(l => !IsMoeLayer(l));
        if (anyDense) Positive("intermediate_size", IntermediateSize);

        bool anyMoe = Enumerable.Range(0, NumHiddenLayers).Any(IsMoeLayer);
        if (anyMoe)
        {
            Positive("moe_intermediate_size", MoeIntermediateSize);
            Positive("n_routed_experts", NRoutedExperts);
            Positive("num_experts_per_tok", NumExpertsPerTok);
            Positive("n_group", NGroup);
            Positive("topk_group", TopkGroup);
            Positive("routed_scaling_factor", RoutedScalingFactor);
            if (NSharedExperts < 0) throw new ModelConfigException($"config: n_shared_experts must be ≥ 0, got {NSharedExperts}");
            if (ScoringFunc != "sigmoid" && ScoringFunc != "softmax")
                throw new ModelConfigException($"config: scoring_func '{ScoringFunc}' is unknown (expected 'sigmoid' or 'softmax')");
            if (TopkMethod != "noaux_tc" && TopkMethod != "group_limited_greedy" && TopkMethod != "greedy")
                throw new ModelConfigException($"config: topk_method '{TopkMethod}' is unknown (expected 'noaux_tc', 'group_limited_greedy' or 'greedy')");
            if (IsV2 && ScoringFunc != "softmax")
                throw new ModelConfigException(
                    $"config: deepseek_v2 scores experts with softmax, got scoring_func '{ScoringFunc}'");
            if (IsV2 && TopkMethod == "noaux_tc")
                throw new ModelConfigException(
                    "config: deepseek_v2 has no correction bias, so topk_method 'noaux_tc' cannot apply " +
                    "(expected 'greedy' or 'group_limited_greedy')");
            if (TopkMethod == "greedy")
            {
                // Greedy top-k over all experts: n_group / topk_group are not used.
                if (NumExpertsPerTok > NRoutedExperts)
                    throw new ModelConfigException($"config: num_experts_per_tok ({NumExpertsPerTok}) is larger " +
                        $"than n_routed_experts ({NRoutedExperts})");
            }
            else if (TopkGroup > NGroup)
                throw new ModelConfigException($"config: topk_group ({TopkGroup}) is larger than n_group ({NGroup})");
            if (TopkMethod != "greedy" && NRoutedExperts % NGroup != 0)
                throw new ModelConfigException($"config: n_routed_experts ({NRoutedExperts}) is not divisible into n_group ({NGroup}) groups");
            int perGroup = NRoutedExperts / NGroup;
            if (TopkMethod != "greedy" && NumExpertsPerTok > TopkGroup * perGroup)
                throw new ModelConfigException(
                    $"config: num_experts_per_tok ({NumExpertsPerTok}) is larger than the kept groups hold (topk_group {TopkGroup} × {perGroup} experts per group = {TopkGroup * perGroup})");
            if (TopkMethod == "noaux_tc" && NGroup > 1 && perGroup < 2)
                throw new ModelConfigException($"config: noaux_tc scores a group by its top-2 experts, but each of the {NGroup} groups holds {perGroup}");
        }

        if (RopeScaling is { } rs)
        {
            if (rs.Type != "yarn")
                throw new ModelConfigException($"config: rope_scaling type '{rs.Type}' is not supported (only 'yarn', or no rope_scaling)");
            Positive("rope_scaling.factor", rs.Factor);
            Positive("rope_scaling.original_max_position_embeddings", rs.OriginalMaxPositionEmbeddings);
            Positive("rope_scaling.beta_fast", rs.BetaFast);
            Positive("rope_scaling.beta_slow", rs.BetaSlow);
        }
        return this;
    }

    // ------------------------------------------------------------------ JSON

    /// <summary>Reads and validates <c>config.json</c> in a checkpoint directory (or the file itself).</summary>
    public static DeepseekV3Config Load(string pathOrDirectory)
    {
        string path = Directory.Exists(pathOrDirectory) ? Path.Combine(pathOrDirectory, "config.json") : pathOrDirectory;
        if (!File.Exists(path)) throw new ModelConfigException($"config: {path} does not exist");
        try
        {
            return FromJson(File.ReadAllText(path));
        }
        catch (ModelConfigException e)
        {
            throw new ModelConfigException($"{path}: {e.Message}", e);
        }
    }

    /// <summary>Parses an HF config.json text; absent fields take HF's defaults. Validates.</summary>
    public static DeepseekV3Config FromJson(string json)
    {
        var doc = Dense.ConfigFields.Parse(json);
        using (doc)
        {
            var root = doc.RootElement;
            // deepseek_v2 configs share the field names; absent router fields take the V2 remote code's defaults.
            bool v2 = Present(root, "model_type", out var mt) && mt.ValueKind == JsonValueKind.String &&
                mt.GetString() == V2ModelTypeName;
            var d = v2 ? V2Defaults : new DeepseekV3Config();
            var c = d with
            {
                ModelType = d.ModelType,
                VocabSize = Int(root, "vocab_size", d.VocabSize),
                HiddenSize = Int(root, "hidden_size", d.HiddenSize),
                IntermediateSize = Int(root, "intermediate_size", d.IntermediateSize),
                MoeIntermediateSize = Int(root, "moe_intermediate_size", d.MoeIntermediateSize),
                NumHiddenLayers = Int(root, "num_hidden_layers", d.NumHiddenLayers),
                FirstKDenseReplace = Int(root, "first_k_dense_replace", d.FirstKDenseReplace),
                MoeLayerFreq = Int(root, "moe_layer_freq", d.MoeLayerFreq),
                NumAttentionHeads = Int(root, "num_attention_heads", d.NumAttentionHeads),
                NumKeyValueHeads = Int(root, "num_key_value_heads", Int(root, "num_attention_heads", d.NumKeyValueHeads)),
                NRoutedExperts = Int(root, "n_routed_experts", d.NRoutedExperts),
                NSharedExperts = Int(root, "n_shared_experts", d.NSharedExperts),
                NumExpertsPerTok = Int(root, "num_experts_per_tok", d.NumExpertsPerTok),
                NGroup = Int(root, "n_group", d.NGroup),
                TopkGroup = Int(root, "topk_group", d.TopkGroup),
                RoutedScalingFactor = Dbl(root, "routed_scaling_factor", d.RoutedScalingFactor),
                ScoringFunc = Str(root, "scoring_func", d.ScoringFunc),
                TopkMethod = Str(root, "topk_method", d.TopkMethod),
                NormTopkProb = Bool(root, "norm_topk_prob", d.NormTopkProb),
                QLoraRank = NullableInt(root, "q_lora_rank", d.QLoraRank),
                KvLoraRank = Int(root, "kv_lora_rank", d.KvLoraRank),
                QkNopeHeadDim = Int(root, "qk_nope_head_dim", d.QkNopeHeadDim),
                QkRopeHeadDim = Int(root, "qk_rope_head_dim", d.QkRopeHeadDim),
                VHeadDim = Int(root, "v_head_dim", d.VHeadDim),
                HiddenAct = Str(root, "hidden_act", d.HiddenAct),
                RmsNormEps = Dbl(root, "rms_norm_eps", d.RmsNormEps),
                RopeTheta = Dbl(root, "rope_theta", d.RopeTheta),
                RopeInterleave = Bool(root, "rope_interleave", d.RopeInterleave),
                MaxPositionEmbeddings = Int(root, "max_position_embeddings", d.MaxPositionEmbeddings),
                TieWordEmbeddings = Bool(root, "tie_word_embeddings", d.TieWordEmbeddings),
                AttentionBias = Bool(root, "attention_bias", d.AttentionBias),
                InitializerRange = Dbl(root, "initializer_range", d.InitializerRange),
                BosTokenId = NullableLong(root, "bos_token_id", d.BosTokenId),
                PadTokenId = NullableLong(root, "pad_token_id", d.PadTokenId),
                EosTokenIds = LongList(root, "eos_token_id", d.EosTokenIds),
                RopeScaling = ParseRopeScaling(root),
            };
            return c.Validate();
        }
    }

    // DeepseekV2Config's router defaults: softmax scores, greedy top-k over all experts, no renormalisation,
    // scale 1, no groups (n_group / topk_group null).
    private static readonly DeepseekV3Config V2Defaults = new()
    {
        ModelType = V2ModelTypeName, ScoringFunc = "softmax", TopkMethod = "greedy", NormTopkProb = false,
        RoutedScalingFactor = 1.0, NGroup = 1, TopkGroup = 1,
    };

    private static RopeScaling? ParseRopeScaling(JsonElement root)
    {
        if (!root.TryGetProperty("rope_scaling", out var rs) || rs.ValueKind == JsonValueKind.Null) return null;
        if (rs.ValueKind != JsonValueKind.Object) throw new ModelConfigException("config: rope_scaling must be an object or null");
        string? type = rs.TryGetProperty("rope_type", out var t1) && t1.ValueKind == JsonValueKind.String ? t1.GetString()
            : rs.TryGetProperty("type", out var t2) && t2.ValueKind == JsonValueKind.String ? t2.GetString() : null;
        if (type == null) throw new ModelConfigException("config: rope_scaling has no 'type' / 'rope_type'");
        if (type == "default") return null;
        if (type != "yarn") throw new ModelConfigException($"config: rope_scaling type '{type}' is not supported (only 'yarn', or no rope_scaling)");
        var d = new RopeScaling();
        int maxPos = Int(root, "max_position_embeddings", 4096);
        return new RopeScaling
        {
            Type = type,
            Factor = Dbl(rs, "factor", d.Factor, "rope_scaling."),
            // HF falls back to max_position_embeddings when the original length is absent.
            OriginalMaxPositionEmbeddings = Int(rs, "original_max_position_embeddings", maxPos, "rope_scaling."),
            BetaFast = Dbl(rs, "beta_fast", d.BetaFast, "rope_scaling."),
            BetaSlow = Dbl(rs, "beta_slow", d.BetaSlow, "rope_scaling."),
            Mscale = Dbl(rs, "mscale", d.Mscale, "rope_scaling."),
            MscaleAllDim = Dbl(rs, "mscale_all_dim", d.MscaleAllDim, "rope_scaling."),
        };
    }

    /// <summary>The config as HF config.json text (architectures, model_type and every field above).</summary>
    public string ToJson()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteStartArray("architectures");
            w.WriteStringValue(IsV2 ? "DeepseekV2ForCausalLM" : "DeepseekV3ForCausalLM");
            w.WriteEndArray();
            w.WriteString("model_type", ModelType);
            w.WriteNumber("vocab_size", VocabSize);
            w.WriteNumber("hidden_size", HiddenSize);
            w.WriteNumber("intermediate_size", IntermediateSize);
            w.WriteNumber("moe_intermediate_size", MoeIntermediateSize);
            w.WriteNumber("num_hidden_layers", NumHiddenLayers);
            w.WriteNumber("first_k_dense_replace", FirstKDenseReplace);
            w.WriteNumber("moe_layer_freq", MoeLayerFreq);
            w.WriteNumber("num_attention_heads", NumAttentionHeads);
            w.WriteNumber("num_key_value_heads", NumKeyValueHeads);
            w.WriteNumber("n_routed_experts", NRoutedExperts);
            w.WriteNumber("n_shared_experts", NSharedExperts);
            w.WriteNumber("num_experts_per_tok", NumExpertsPerTok);
            w.WriteNumber("n_group", NGroup);
            w.WriteNumber("topk_group", TopkGroup);
            w.WriteNumber("routed_scaling_factor", RoutedScalingFactor);
            w.WriteString("scoring_func", ScoringFunc);
            w.WriteString("topk_method", TopkMethod);
            w.WriteBoolean("norm_topk_prob", NormTopkProb);
            if (QLoraRank is { } q) w.WriteNumber("q_lora_rank", q); else w.WriteNull("q_lora_rank");
            w.WriteNumber("kv_lora_rank", KvLoraRank);
            w.WriteNumber("qk_nope_head_dim", QkNopeHeadDim);
            w.WriteNumber("qk_rope_head_dim", QkRopeHeadDim);
            w.WriteNumber("v_head_dim", VHeadDim);
            w.WriteString("hidden_act", HiddenAct);
            w.WriteNumber("rms_norm_eps", RmsNormEps);
            w.WriteNumber("rope_theta", RopeTheta);
            w.WriteBoolean("rope_interleave", RopeInterleave);
            w.WriteNumber("max_position_embeddings", MaxPositionEmbeddings);
            w.WriteBoolean("tie_word_embeddings", TieWordEmbeddings);
            w.WriteBoolean("attention_bias", AttentionBias);
            w.WriteNumber("initializer_range", InitializerRange);
            if (BosTokenId is { } bos) w.WriteNumber("bos_token_id", bos); else w.WriteNull("bos_token_id");
            if (EosTokenIds.Count == 1) w.WriteNumber("eos_token_id", EosTokenIds[0]);
            else
            {
                w.WriteStartArray("eos_token_id");
                foreach (var e in EosTokenIds) w.WriteNumberValue(e);
                w.WriteEndArray();
            }
            if (PadTokenId is { } pad) w.WriteNumber("pad_token_id", pad);
            w.WriteString("torch_dtype", "float32");
            if (RopeScaling is { } rs)
            {
                w.WriteStartObject("rope_scaling");
                w.WriteString("type", rs.Type);
                w.WriteString("rope_type", rs.Type);
                w.WriteNumber("factor", rs.Factor);
                w.WriteNumber("original_max_position_embeddings", rs.OriginalMaxPositionEmbeddings);
                w.WriteNumber("beta_fast", rs.BetaFast);
                w.WriteNumber("beta_slow", rs.BetaSlow);
                w.WriteNumber("mscale", rs.Mscale);
                w.WriteNumber("mscale_all_dim", rs.MscaleAllDim);
                w.WriteEndObject();
            }
            else w.WriteNull("rope_scaling");
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    // ------------------------------------------------------------------ presets

    /// <summary>Names accepted by <see cref="Preset"/>.</summary>
    public static IReadOnlyList<string> PresetNames =>
        ["tiny", "tiny-yarn", "tiny-qlora-256", "bench-tiny", "deepseek-v2-tiny"];

    /// <summary>
    /// Named tiny configs:
    /// <list type="bullet">
    /// <item><c>tiny</c>: 2 layers (1 dense + 1 MoE, 8 experts in 2 groups, top-2), q compression, plain RoPE; unit tests.</item>
    /// <item><c>tiny-yarn</c>: the shape of the golden case (q_proj, YaRN ×4 over 32, 16 experts, top-4, 2 shared).</item>
    /// <item><c>tiny-qlora-256</c>: q compression and 8 groups × 32 experts with top-8 of top-4 groups, as in the 671B router.</item>
    /// <item><c>bench-tiny</c>: the shared CPU benchmark config: hidden 128, 4 layers (first dense,
    /// 384), 4 heads, q/kv ranks 64, head dims 32/16/32, 256 routed + 1 shared experts of width 32,
    /// top-8 of 8 groups (4 kept), sigmoid, scale 2.5, vocab 128.</item>
    /// <item><c>deepseek-v2-tiny</c>: deepseek_v2 with DeepSeek-V2-Lite's structure at tiny widths: q_proj, layer 0
    /// dense, 16 routed + 2 shared experts, top-4 greedy softmax routing without renormalisation, YaRN with
    /// mscale = mscale_all_dim = 0.707.</item>
    /// </list>
    /// </summary>
    public static DeepseekV3Config Preset(string name) => name switch
    {
        "tiny" => new DeepseekV3Config
        {
            VocabSize = 64, HiddenSize = 32, IntermediateSize = 48, MoeIntermediateSize = 16,
            NumHiddenLayers = 2, FirstKDenseReplace = 1, NumAttentionHeads = 2, NumKeyValueHeads = 2,
            NRoutedExperts = 8, NSharedExperts = 1, NumExpertsPerTok = 2, NGroup = 2, TopkGroup = 1,
            RoutedScalingFactor = 2.5, QLoraRank = 16, KvLoraRank = 16, QkNopeHeadDim = 8, QkRopeHeadDim = 8,
            VHeadDim = 8, MaxPositionEmbeddings = 128,
        }.Validate(),
        "tiny-yarn" => new DeepseekV3Config
        {
            VocabSize = 80, HiddenSize = 48, IntermediateSize = 64, MoeIntermediateSize = 16,
            NumHiddenLayers = 2, FirstKDenseReplace = 1, NumAttentionHeads = 3, NumKeyValueHeads = 3,
            NRoutedExperts = 16, NSharedExperts = 2, NumExpertsPerTok = 4, NGroup = 1, TopkGroup = 1,
            RoutedScalingFactor = 1.5, QLoraRank = null, KvLoraRank = 24, QkNopeHeadDim = 8, QkRopeHeadDim = 8,
            VHeadDim = 8, MaxPositionEmbeddings = 256,
            RopeScaling = new RopeScaling { Factor = 4, OriginalMaxPositionEmbeddings = 32, BetaFast = 32, BetaSlow = 1, Mscale = 0.707, MscaleAllDim = 0.707 },
        }.Validate(),
        "tiny-qlora-256" => new DeepseekV3Config
        {
            VocabSize = 96, HiddenSize = 32, IntermediateSize = 48, MoeIntermediateSize = 8,
            NumHiddenLayers = 3, FirstKDenseReplace = 1, NumAttentionHeads = 2, NumKeyValueHeads = 2,
            NRoutedExperts = 256, NSharedExperts = 1, NumExpertsPerTok = 8, NGroup = 8, TopkGroup = 4,
            RoutedScalingFactor = 2.5, QLoraRank = 24, KvLoraRank = 16, QkNopeHeadDim = 8, QkRopeHeadDim = 4,
            VHeadDim = 6, MaxPositionEmbeddings = 512,
            RopeScaling = new RopeScaling { Factor = 8, OriginalMaxPositionEmbeddings = 16, BetaFast = 32, BetaSlow = 1, Mscale = 1.0, MscaleAllDim = 1.0 },
        }.Validate(),
        "bench-tiny" => new DeepseekV3Config
        {
            VocabSize = 128, HiddenSize = 128, IntermediateSize = 384, MoeIntermediateSize = 32,
            NumHiddenLayers = 4, FirstKDenseReplace = 1, NumAttentionHeads = 4, NumKeyValueHeads = 4,
            NRoutedExperts = 256, NSharedExperts = 1, NumExpertsPerTok = 8, NGroup = 8, TopkGroup = 4,
            RoutedScalingFactor = 2.5, ScoringFunc = "sigmoid", QLoraRank = 64, KvLoraRank = 64,
            QkNopeHeadDim = 32, QkRopeHeadDim = 16, VHeadDim = 32, MaxPositionEmbeddings = 2048,
        }.Validate(),
        "deepseek-v2-tiny" => (V2Defaults with
        {
            VocabSize = 128,
            HiddenSize = 64,
            IntermediateSize = 128,
            MoeIntermediateSize = 16,
            NumHiddenLayers = 2,
            FirstKDenseReplace = 1,
            NumAttentionHeads = 4,
            NumKeyValueHeads = 4,
            NRoutedExperts = 16,
            NSharedExperts = 2,
            NumExpertsPerTok = 4,
            QLoraRank = null,
            KvLoraRank = 32,
            QkNopeHeadDim = 16,
            QkRopeHeadDim = 8,
            VHeadDim = 16,
            MaxPositionEmbeddings = 256,
            RopeScaling = new RopeScaling
            {
                Factor = 4, OriginalMaxPositionEmbeddings = 64, BetaFast = 32, BetaSlow = 1, Mscale = 0.707,
                MscaleAllDim = 0.707,
            },
        }).Validate(),
        _ => throw new ModelConfigException($"unknown model preset '{name}' (known: {string.Join(", ", PresetNames)})"),
    };
}
