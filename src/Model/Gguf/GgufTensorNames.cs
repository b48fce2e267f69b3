// Source: llama.cpp's tensor name table (gguf-py/gguf/constants.py, TENSOR_NAMES / MODEL_TENSORS) and the HF names
// convert_hf_to_gguf.py maps onto it (gguf-py/gguf/tensor_mapping.py) for llama, qwen2, qwen3, qwen3moe and deepseek2
// (DeepSeek-V2/V3: MLA projections, the router's correction bias exp_probs_b, shared experts *_shexp).
using System.Text.RegularExpressions;

namespace NativeReasoner.Model.Gguf;

/// <summary>
/// Where an engine (HF-named) parameter lives in a GGUF file: a tensor, and for MoE experts the index of the expert in
/// the tensor that stacks all of a layer's experts (ggml's *_exps tensors, [E, rows, cols]).
/// </summary>
public readonly record struct GgufLocation(string Tensor, int Expert = -1)
{
    public bool IsExpertSlice => Expert >= 0;
}

/// <summary>The HF → GGUF tensor names of the supported architectures (the names do not collide between them).</summary>
public static partial class GgufTensorNames
{
    [GeneratedRegex(@"^model\.layers\.(\d+)\.(.+)$")]
    private static partial Regex LayerName();

    [GeneratedRegex(@"^mlp\.experts\.(\d+)\.(gate|up|down)_proj\.weight$")]
    private static partial Regex ExpertName();

    private static readonly Dictionary<string, string> Global = new(StringComparer.Ordinal)
    {
        ["model.embed_tokens.weight"] = "token_embd.weight",
        ["model.norm.weight"] = "output_norm.weight",
        ["lm_head.weight"] = "output.weight",
    };

    // Per-layer names shared by the dense families and qwen3moe (suffix after "model.layers.N.").
    private static readonly Dictionary<string, string> Layer = new(StringComparer.Ordinal)
    {
        ["input_layernorm.weight"] = "attn_norm.weight",
        ["post_attention_layernorm.weight"] = "ffn_norm.weight",
        ["self_attn.q_proj.weight"] = "attn_q.weight",
        ["self_attn.q_proj.bias"] = "attn_q.bias",
        ["self_attn.k_proj.weight"] = "attn_k.weight",
        ["self_attn.k_proj.bias"] = "attn_k.bias",
        ["self_attn.v_proj.weight"] = "attn_v.weight",
        ["self_attn.v_proj.bias"] = "attn_v.bias",
        ["self_attn.o_proj.weight"] = "attn_output.weight",
        ["self_attn.o_proj.bias"] = "attn_output.bias",
        ["self_attn.q_norm.weight"] = "attn_q_norm.weight",
        ["self_attn.k_norm.weight"] = "attn_k_norm.weight",
        ["mlp.gate_proj.weight"] = "ffn_gate.weight",
        ["mlp.up_proj.weight"] = "ffn_up.weight",
        ["mlp.down_proj.weight"] = "ffn_down.weight",
        ["mlp.gate.weight"] = "ffn_gate_inp.weight",
        // deepseek2 (MLA attention, shared experts, the sigmoid router's correction bias).
        ["self_attn.q_a_proj.weight"] = "attn_q_a.weight",
        ["self_attn.q_a_layernorm.weight"] = "attn_q_a_norm.weight",
        ["self_attn.q_b_proj.weight"] = "attn_q_b.weight",
        ["self_attn.kv_a_proj_with_mqa.weight"] = "attn_kv_a_mqa.weight",
        ["self_attn.kv_a_layernorm.weight"] = "attn_kv_a_norm.weight",
        // One tensor in older files; llama.cpp's MLA files hold it split (MlaKvB: attn_k_b + attn_v_b).
        ["self_attn.kv_b_proj.weight"] = MlaKvB.JoinedSuffix,
        ["mlp.gate.e_score_correction_bias"] = "exp_probs_b.bias",
        ["mlp.shared_experts.gate_proj.weight"] = "ffn_gate_shexp.weight",
        ["mlp.shared_experts.up_proj.weight"] = "ffn_up_shexp.weight",
        ["mlp.shared_experts.down_proj.weight"] = "ffn_down_shexp.weight",
    };

    /// <summary>The GGUF location of HF parameter <paramref name="hfName"/>; null when the name has no GGUF
    /// form.</summary>
    public static GgufLocation? ToGguf(string hfName)
    {
        if (Global.TryGetValue(hfName, out var g)) return new GgufLocation(g);
        var m = LayerName().Match(hfName);
        if (!m.Success) return null;
        string block = "blk." + m.Groups[1].Value + ".";
        string rest = m.Groups[2].Value;
        if (Layer.TryGetValue(rest, out var l)) return new GgufLocation(block + l);
        var e = ExpertName().Match(rest);
        if (e.Success)
            return new GgufLocation($"{block}ffn_{e.Groups[2].Value}_exps.weight", int.Parse(e.Groups[1].Value,
                System.Globalization.CultureInfo.InvariantCulture));
        return null;
    }
}
