using NativeReasoner.Cli;
using NativeReasoner.Kernels;
using NativeReasoner.Kernels.Quant;
using NativeReasoner.Model;
using NativeReasoner.Model.Dense;
using Xunit;

namespace NativeReasoner.Tests.Quant;

/// <summary>
/// `nr quantize` end to end on random-weight models of three families whose matrices have K a multiple of 256
/// (so every format packs them): dense qwen2, qwen3_moe (routed experts) and DeepSeek-V3 (MLA + MoE with shared
/// experts). The packed model reloads from disk, its logits stay near the float32 model's, the reference backend
/// (dequantise + fp32) agrees with the CPU kernels, and a training load of it is refused with a clear error.
/// </summary>
public sealed class PackedModelTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "nr-quant-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    private const string Qwen2 = """
        {"model_type": "qwen2", "vocab_size": 300, "hidden_size": 256, "intermediate_size": 512,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 128,
         "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": false}
        """;

    private const string Qwen3Moe = """
        {"model_type": "qwen3_moe", "vocab_size": 300, "hidden_size": 256, "intermediate_size": 512,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64,
         "max_position_embeddings": 128, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": true,
         "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 256, "norm_topk_prob": true,
         "decoder_sparse_step": 1, "mlp_only_layers": [0]}
        """;

    // Layer 0 dense (intermediate 512), layer 1 MoE: 8 routed experts of 256 (k = 2) + 1 shared; MLA with q and kv
    // ranks 256, 2 heads of nope 64 / rope 32 / v 128; vocabulary 300 with an untied head.
    internal const string DeepseekV3 = """
        {"model_type": "deepseek_v3", "vocab_size": 300, "hidden_size": 256, "intermediate_size": 512,
         "moe_intermediate_size": 256, "num_hidden_layers": 2, "first_k_dense_replace": 1, "moe_layer_freq": 1,
         "num_attention_heads": 2, "num_key_value_heads": 2, "n_routed_experts": 8, "n_shared_experts": 1,
         "num_experts_per_tok": 2, "n_group": 1, "topk_group": 1, "routed_scaling_factor": 1.0,
         "scoring_func": "sigmoid", "topk_method": "noaux_tc", "norm_topk_prob": true, "q_lora_rank": 256,
         "kv_lora_rank": 256, "qk_nope_head_dim": 64, "qk_rope_head_dim": 32, "v_head_dim": 128,
         "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "max_position_embeddings": 128, "tie_word_embeddings": false}
        """;

    public static IEnumerable<object[]> Cases()
    {
        foreach (var family in new[] { "qwen2", "qwen3_moe", "deepseek_v3" })
            foreach (var format in new[] { "bf16", "q8_0", "q4_0", "q4_k" })
                yield return [family, format];
    }

    private string MakeModel(string family)
    {
        string json = family switch { "qwen2" => Qwen2, "qwen3_moe" => Qwen3Moe, _ => DeepseekV3 };
        string dir = Path.Combine(_root, family + "-f32");
        var config = CausalLMRegistry.ParseConfig(json);
        using ICausalLM model = config is DeepseekV3Config ds
            ? new DeepseekV3ForCausalLM(ds, new Generator(3))
            : new DenseForCausalLM((DenseConfig)config, new Generator(3));
        model.Save(dir);
        return dir;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Quantized_model_reloads_and_stays_near_float32(string family, string formatName)
    {
        string source = MakeModel(family), output = Path.Combine(_root, family + "-" + formatName);
        var report = QuantizeCommand.Run(source, output, formatName, prompts: 2, length: 8);
        var format = QuantFormatInfo.Parse(formatName);

        Assert.True(report.Packed > 0, "nothing was packed");
        double limit = format switch
        {
            QuantFormat.BF16 => 0.01,
            QuantFormat.Q8_0 => 0.03,
            _ => 0.25,
        };
        Assert.True(report.RelativeRmsError < limit && !double.IsNaN(report.MaxAbsError),
            $"{family} {formatName}: relative rms logit error {report.RelativeRmsError}");
        Assert.True(report.RelativeRmsError > 0, "quantisation changed nothing: the packed weights were not used");
        // Held bytes: every packed matrix smaller than its float32 self by the format's ratio.
        double ratio = (double)report.WeightBytes / report.ReferenceWeightBytes;
        Assert.True(ratio < (format == QuantFormat.Q8_0 || format == QuantFormat.BF16 ? 0.55 : 0.4),
            $"{family} {formatName}: weights held {ratio:P0} of float32");

        // The same packed model on the reference backend (dequantise + fp32, the oracle) and on the CPU kernels.
        var ids = new long[16];
        for (int i = 0; i < ids.Length; i++) ids[i] = (i * 37 + 5) % 300;
        float[] cpu, reference;
        using (var m = CausalLMRegistry.Load(output, Device.Cpu, CheckpointLoadOptions.Inference, out var loaded))
        {
            Assert.Contains(loaded.Notes, n => n.Contains("packed " + format.Name()));
            m.Eval();
            cpu = LogitsRunner.Run(m, ids, 2, 8);
        }
        using (var m = CausalLMRegistry.Load(output, Device.Parse("reference"), CheckpointLoadOptions.Inference, out _))
        {
            m.Eval();
            reference = LogitsRunner.Run(m, ids, 2, 8);
        }
        double num = 0, den = 0;
        for (int i = 0; i < cpu.Length; i++)
        {
            num += (cpu[i] - reference[i]) * (double)(cpu[i] - reference[i]);
            den += reference[i] * (double)reference[i];
        }
        double rel = Math.Sqrt(num / den);
        // bf16 rows are multiplied in fp32 on both; the integer formats quantise activations on the CPU (≈ 1 % on
        // the dense model; in an MoE model that rounding can also flip a token's expert choice, so more).
        double cpuLimit = format == QuantFormat.BF16 ? 1e-4 : family == "qwen2" ? 0.03 : 0.1;
        Assert.True(rel < cpuLimit, $"{family} {formatName}: CPU vs reference {rel}");

        var e = Assert.Throws<CheckpointMismatchException>(() =>
            CausalLMRegistry.Load(output, Device.Cpu, CheckpointLoadOptions.Training, out _));
        Assert.Contains("inference", e.Message);
    }

    [Fact]
    public void Cached_decode_of_a_packed_model_matches_its_full_forward()
    {
        string source = MakeModel("qwen2"), output = Path.Combine(_root, "qwen2-q4_0-decode");
        QuantizeCommand.Run(source, output, "q4_0", prompts: 1, length: 4);
        var ids = new long[40];
        for (int i = 0; i < ids.Length; i++) ids[i] = (i * 11 + 3) % 300;
        using var m = CausalLMRegistry.Load(output, Device.Cpu, CheckpointLoadOptions.Inference, out _);
        m.Eval();
        // The full forward (40 rows) goes through the dequantised-panel GEMM, the cached decode through the integer
        // dots: the two paths agree to the int8 rounding of the activations.
        var full = LogitsRunner.Run(m, ids, 1, 40);
        var decoded = LogitsRunner.Run(m, ids, 1, 40, decodeFrom: 3);
        int v = 300;
        double num = 0, den = 0;
        for (int i = 0; i < decoded.Length; i++)
        {
            float want = full[3 * v + i];
            num += (decoded[i] - want) * (double)(decoded[i] - want);
            den += want * (double)want;
        }
        Assert.True(Math.Sqrt(num / den) < 0.03, $"decode vs full forward: {Math.Sqrt(num / den)}");
    }

    [Fact]
    public void Bad_dtype_and_same_directory_are_clear_errors()
    {
        string source = MakeModel("qwen2");
        var e = Assert.Throws<ArgumentException>(() => QuantizeCommand.Run(source, Path.Combine(_root, "x"), "q5_1"));
        Assert.Contains("q4_k", e.Message);
        e = Assert.Throws<ArgumentException>(() => QuantizeCommand.Run(source, Path.Combine(_root, "x"), "q6_k"));
        Assert.Contains("decode-only", e.Message);
        e = Assert.Throws<ArgumentException>(() => QuantizeCommand.Run(source, source, "q8_0"));
        Assert.Contains("--out", e.Message);
    }
}
