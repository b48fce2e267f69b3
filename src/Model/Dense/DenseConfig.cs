using System.Globalization;
using System.Text;
using System.Text.Json;

namespace NativeReasoner.Model.Dense;

/// <summary>
/// One config driving the dense decoder families (Llama, Qwen2, Qwen3): pre-norm blocks of grouped-query
/// attention with rotate-half RoPE and a SwiGLU MLP. The families differ only in flags — projection biases,
/// per-head q/k RMSNorm, an explicit head_dim — which each family's reader sets from its config.json
/// (Llama/LlamaFamily.cs, Qwen2/Qwen2Family.cs, Qwen3/Qwen3Family.cs). Field names are HF's.
/// </summary>
public sealed record DenseConfig : ICausalLMConfig
{
    public required string ModelType { get; init; }
    public int VocabSize { get; init; }
    public int HiddenSize { get; init; }
    public int IntermediateSize { get; init; }
    public int NumHiddenLayers { get; init; }
    public int NumAttentionHeads { get; init; }
    /// <summary>K/V heads; each serves num_attention_heads / num_key_value_heads query heads (GQA).</summary>
    public int NumKeyValueHeads { get; init; }
    /// <summary>Per-head width (Qwen3 and newer Llama configs give it explicitly; else hidden / heads).</summary>
    public int HeadDim { get; init; }
    public double RmsNormEps { get; init; } = 1e-6;
    public RopeParameters Rope { get; init; } = new();
    public int MaxPositionEmbeddings { get; init; }
    public bool TieWordEmbeddings { get; init; }
    /// <summary>q_proj, k_proj, v_proj carry a bias (Qwen2 always; Llama/Qwen3 with attention_bias).</summary>
    public bool QkvBias { get; init; }
    /// <summary>o_proj carries a bias (Llama/Qwen3 with attention_bias; never Qwen2).</summary>
    public bool OProjBias { get; init; }
    /// <summary>Qwen3: q_norm / k_norm, an RMSNorm over head_dim applied per head before RoPE.</summary>
    public bool QkNorm { get; init; }
    public string HiddenAct { get; init; } = "silu";
    public double InitializerRange { get; init; } = 0.02;
    public long? BosTokenId { get; init; }
    public IReadOnlyList<long> EosTokenIds { get; init; } = [];
    public long? PadTokenId { get; init; }
    /// <summary>Sliding-window attention flag (Qwen2/Qwen3); only windows covering the whole context run.</summary>
    public bool UseSlidingWindow { get; init; }
    public int? SlidingWindow { get; init; }
    public int? MaxWindowLayers { get; init; }

    /// <summary>Qwen3-MoE: routed experts (0 = every layer dense).</summary>
    public int NumExperts { get; init; }
    public int NumExpertsPerTok { get; init; }
    /// <summary>Width of one expert's SwiGLU.</summary>
    public int MoeIntermediateSize { get; init; }
    /// <summary>Renormalise the chosen experts' softmax scores to sum 1.</summary>
    public bool NormTopkProb { get; init; }
    /// <summary>Layer l is sparse when (l + 1) % decoder_sparse_step == 0 and l is not in mlp_only_layers.</summary>
    public int DecoderSparseStep { get; init; } = 1;
    public IReadOnlyList<int> MlpOnlyLayers { get; init; } = [];

    public int KvGroups => NumAttentionHeads / NumKeyValueHeads;

    /// <summary>True for the layers whose MLP is a <see cref="SparseMoeBlock"/> (HF's Qwen3MoeDecoderLayer rule).</summary>
    public bool IsMoeLayer(int layer) =>
        NumExperts > 0 && !MlpOnlyLayers.Contains(layer) && (layer + 1) % DecoderSparseStep == 0;

    /// <summary>Throws <see cref="ModelConfigException"/> naming the first inconsistent field(s).</summary>
    public DenseConfig Validate()
    {
        void Positive(string name, double value)
        {
            if (!(value > 0)) throw new ModelConfigException($"config ({ModelType}): {name} must be positive, got " +
                $"{value.ToString(CultureInfo.InvariantCulture)}");
        }
        Positive("vocab_size", VocabSize);
        Positive("hidden_size", HiddenSize);
        Positive("intermediate_size", IntermediateSize);
        Positive("num_hidden_layers", NumHiddenLayers);
        Positive("num_attention_heads", NumAttentionHeads);
        Positive("num_key_value_heads", NumKeyValueHeads);
        Positive("head_dim", HeadDim);
        Positive("rms_norm_eps", RmsNormEps);
        Positive("max_position_embeddings", MaxPositionEmbeddings);
        string where = $"config ({ModelType})";
        ConfigLimits.AtMost(where, "vocab_size", VocabSize, ConfigLimits.MaxVocabSize);
        ConfigLimits.AtMost(where, "hidden_size", HiddenSize, ConfigLimits.MaxHiddenSize);
        ConfigLimits.AtMost(where, "intermediate_size", IntermediateSize, ConfigLimits.MaxIntermediateSize);
        ConfigLimits.AtMost(where, "num_hidden_layers", NumHiddenLayers, ConfigLimits.MaxLayers);
        ConfigLimits.AtMost(where, "num_attention_heads", NumAttentionHeads, ConfigLimits.MaxHeads);
        ConfigLimits.AtMost(where, "num_key_value_heads", NumKeyValueHeads, ConfigLimits.MaxHeads);
        ConfigLimits.AtMost(where, "head_dim", HeadDim, ConfigLimits.MaxHeadDim);
        ConfigLimits.AtMost(where, "max_position_embeddings", MaxPositionEmbeddings, ConfigLimits.MaxPositions);
        ConfigLimits.AtMost(where, "num_experts", NumExperts, ConfigLimits.MaxExperts);
        ConfigLimits.AtMost(where, "moe_intermediate_size", MoeIntermediateSize, ConfigLimits.MaxIntermediateSize);
        if (NumAttentionHeads % NumKeyValueHeads != 0)
            throw new ModelConfigException(
                $"config ({ModelType}): num_attention_heads ({NumAttentionHeads}) must be a multiple of " +
                    $"num_key_value_heads ({NumKeyValueHeads})");
        if (HeadDim % 2 != 0) throw new ModelConfigException($"config ({ModelType}): head_dim must be even (RoPE " +
            $"rotates pairs), got {HeadDim}");
        if (HiddenAct != "silu") throw new ModelConfigException($"config ({ModelType}): hidden_act '{HiddenAct}' is " +
            $"not supported (only 'silu')");
        Rope.Validate();
        if (NumExperts < 0)
            throw new ModelConfigException($"config ({ModelType}): num_experts must be ≥ 0, got {NumExperts}");
        if (NumExperts > 0)
        {
            Positive("num_experts_per_tok", NumExpertsPerTok);
            Positive("moe_intermediate_size", MoeIntermediateSize);
            Positive("decoder_sparse_step", DecoderSparseStep);
            if (NumExpertsPerTok > NumExperts)
                throw new ModelConfigException(
                    $"config ({ModelType}): num_experts_per_tok ({NumExpertsPerTok}) exceeds num_experts " +
                    $"({NumExperts})");
        }
        bool windowedLayers = (MaxWindowLayers ?? 0) < NumHiddenLayers;
        if (UseSlidingWindow && SlidingWindow is { } w && w < MaxPositionEmbeddings && windowedLayers)
            throw new ModelConfigException(
                $"config ({ModelType}): use_sliding_window = true with sliding_window {w} < max_position_embeddings " +
                    $"{MaxPositionEmbeddings} " +
                "is not implemented (every layer attends to the full context); set use_sliding_window to false");
        return this;
    }

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

    public ICausalLM Build(Generator gen, Device? device = null) => new DenseForCausalLM(this, gen, device);

    /// <summary>The architecture name HF writes into config.json's <c>architectures</c>.</summary>
    public string Architecture => ModelType switch
    {
        "qwen2" => "Qwen2ForCausalLM",
        "qwen3" => "Qwen3ForCausalLM",
        "qwen3_moe" => "Qwen3MoeForCausalLM",
        _ => "LlamaForCausalLM",
    };

    /// <summary>HF config.json text: the fields every dense family shares plus the family's own flags.</summary>
    public string ToJson()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteStartArray("architectures");
            w.WriteStringValue(Architecture);
            w.WriteEndArray();
            w.WriteString("model_type", ModelType);
            w.WriteNumber("vocab_size", VocabSize);
            w.WriteNumber("hidden_size", HiddenSize);
            w.WriteNumber("intermediate_size", IntermediateSize);
            w.WriteNumber("num_hidden_layers", NumHiddenLayers);
            w.WriteNumber("num_attention_heads", NumAttentionHeads);
            w.WriteNumber("num_key_value_heads", NumKeyValueHeads);
            w.WriteNumber("head_dim", HeadDim);
            w.WriteString("hidden_act", HiddenAct);
            w.WriteNumber("rms_norm_eps", RmsNormEps);
            w.WriteNumber("max_position_embeddings", MaxPositionEmbeddings);
            w.WriteBoolean("tie_word_embeddings", TieWordEmbeddings);
            // Qwen2 has no attention_bias field (its q/k/v biases are fixed); the others spell the flag.
            if (ModelType != "qwen2") w.WriteBoolean("attention_bias", OProjBias);
            if (ModelType != "llama")
            {
                w.WriteBoolean("use_sliding_window", UseSlidingWindow);
                if (SlidingWindow is { } sw) w.WriteNumber("sliding_window", sw); else w.WriteNull("sliding_window");
                if (MaxWindowLayers is { } mwl) w.WriteNumber("max_window_layers", mwl);
            }
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
            if (NumExperts > 0)
            {
                w.WriteNumber("num_experts", NumExperts);
                w.WriteNumber("num_experts_per_tok", NumExpertsPerTok);
                w.WriteNumber("moe_intermediate_size", MoeIntermediateSize);
                w.WriteBoolean("norm_topk_prob", NormTopkProb);
                w.WriteNumber("decoder_sparse_step", DecoderSparseStep);
                w.WriteStartArray("mlp_only_layers");
                foreach (var l in MlpOnlyLayers) w.WriteNumberValue(l);
                w.WriteEndArray();
            }
            Rope.WriteJson(w);
            w.WriteString("torch_dtype", "float32");
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    /// <summary>
    /// The fields every dense family reads the same way; <paramref name="defaults"/> carries the family's HF defaults
    /// and flags. The family reader then adds what is its own.
    /// </summary>
    internal static DenseConfig ReadCommon(JsonElement root, DenseConfig defaults)
    {
        int heads = ConfigFields.Int(root, "num_attention_heads", defaults.NumAttentionHeads);
        int hidden = ConfigFields.Int(root, "hidden_size", defaults.HiddenSize);
        int maxPos = ConfigFields.Int(root, "max_position_embeddings", defaults.MaxPositionEmbeddings);
        string act = ConfigFields.Str(root, "hidden_act", defaults.HiddenAct);
        double partial = ConfigFields.Dbl(root, "partial_rotary_factor", 1.0);
        if (partial != 1.0)
            throw new ModelConfigException($"config ({defaults.ModelType}): partial_rotary_factor " +
                $"{partial.ToString(CultureInfo.InvariantCulture)} is not implemented (only 1)");
        if (ConfigFields.Present(root, "layer_types", out var lt) && lt.ValueKind == JsonValueKind.Array)
            foreach (var t in lt.EnumerateArray())
                if (t.ValueKind != JsonValueKind.String || t.GetString() != "full_attention")
                    throw new ModelConfigException(
                        $"config ({defaults.ModelType}): layer_types entry {t.GetRawText()} is not implemented " +
                            $"(only \"full_attention\")");
        return defaults with
        {
            VocabSize = ConfigFields.Int(root, "vocab_size", defaults.VocabSize),
            HiddenSize = hidden,
            IntermediateSize = ConfigFields.Int(root, "intermediate_size", defaults.IntermediateSize),
            NumHiddenLayers = ConfigFields.Int(root, "num_hidden_layers", defaults.NumHiddenLayers),
            NumAttentionHeads = heads,
            NumKeyValueHeads = ConfigFields.Int(root, "num_key_value_heads", heads),
            HeadDim = ConfigFields.Int(root, "head_dim", heads > 0 ? hidden / heads : 0),
            RmsNormEps = ConfigFields.Dbl(root, "rms_norm_eps", defaults.RmsNormEps),
            MaxPositionEmbeddings = maxPos,
            Rope = RopeParameters.FromJson(root, defaults.Rope.Theta, maxPos),
            TieWordEmbeddings = ConfigFields.Bool(root, "tie_word_embeddings", defaults.TieWordEmbeddings),
            HiddenAct = act,
            InitializerRange = ConfigFields.Dbl(root, "initializer_range", defaults.InitializerRange),
            BosTokenId = ConfigFields.NullableLong(root, "bos_token_id", defaults.BosTokenId),
            EosTokenIds = ConfigFields.LongList(root, "eos_token_id", defaults.EosTokenIds),
            PadTokenId = ConfigFields.NullableLong(root, "pad_token_id", defaults.PadTokenId),
        };
    }

    /// <summary>Qwen2/Qwen3's sliding-window fields.</summary>
    internal static DenseConfig ReadSlidingWindow(JsonElement root, DenseConfig c) => c with
    {
        UseSlidingWindow = ConfigFields.Bool(root, "use_sliding_window", false),
        SlidingWindow = ConfigFields.NullableInt(root, "sliding_window", c.SlidingWindow),
        MaxWindowLayers = ConfigFields.NullableInt(root, "max_window_layers", c.MaxWindowLayers),
    };
}
