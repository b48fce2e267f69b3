using NativeReasoner.Model;
using Xunit;

namespace NativeReasoner.Tests.Model;

/// <summary>
/// The generation prefill that runs the vocabulary head on one position per sequence (<see
/// cref="ICausalLM.ForwardLast"/>, <see cref="ICausalLM.ForwardCachedLast"/>): for every family its logits equal
/// the chosen rows of the full forward, it fills the cache exactly as the full prefill does, and bad positions
/// are refused before anything runs.
/// </summary>
public sealed class LastPositionPrefillTests
{
    private const string Dense = """
        {"model_type": "MODEL", "vocab_size": 97, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64, "tie_word_embeddings": TIE
         EXTRA}
        """;

    private static string ConfigJson(string family) => family switch
    {
        "llama" => Dense.Replace("MODEL", "llama").Replace("TIE", "false").Replace("EXTRA", ""),
        "qwen2" => Dense.Replace("MODEL", "qwen2").Replace("TIE", "true").Replace("EXTRA", ""),
        "qwen3" => Dense.Replace("MODEL", "qwen3").Replace("TIE", "false").Replace("EXTRA", ", \"head_dim\": 16"),
        "qwen3_moe" => Dense.Replace("MODEL", "qwen3_moe").Replace("TIE", "false").Replace("EXTRA",
            ", \"head_dim\": 8, \"num_experts\": 4, \"num_experts_per_tok\": 2, \"moe_intermediate_size\": 16, " +
            "\"norm_topk_prob\": true, \"decoder_sparse_step\": 1, \"mlp_only_layers\": []"),
        "deepseek_v2" => """
            {"model_type": "deepseek_v2", "vocab_size": 97, "hidden_size": 16, "num_hidden_layers": 2,
            "first_k_dense_replace": 1, "num_attention_heads": 2, "intermediate_size": 24, "moe_intermediate_size": 8,
            "n_routed_experts": 8, "n_shared_experts": 2, "num_experts_per_tok": 2, "n_group": null, "topk_group": null,
            "q_lora_rank": null, "kv_lora_rank": 8, "qk_nope_head_dim": 4, "qk_rope_head_dim": 4, "v_head_dim": 4,
            "max_position_embeddings": 64}
            """,
        _ => """
            {"model_type": "deepseek_v3", "vocab_size": 97, "hidden_size": 32, "intermediate_size": 48,
             "moe_intermediate_size": 16, "num_hidden_layers": 2, "first_k_dense_replace": 1, "moe_layer_freq": 1,
             "num_attention_heads": 2, "num_key_value_heads": 2, "n_routed_experts": 8, "n_shared_experts": 1,
             "num_experts_per_tok": 2, "n_group": 2, "topk_group": 1, "routed_scaling_factor": 2.5,
             "scoring_func": "sigmoid", "topk_method": "noaux_tc", "norm_topk_prob": true, "q_lora_rank": 16,
             "kv_lora_rank": 16, "qk_nope_head_dim": 8, "qk_rope_head_dim": 4, "v_head_dim": 8,
             "max_position_embeddings": 64, "tie_word_embeddings": false}
            """,
    };

    public static TheoryData<string> Families() =>
        ["deepseek_v3", "deepseek_v2", "llama", "qwen2", "qwen3", "qwen3_moe"];

    private static ICausalLM Build(string family)
    {
        var model = CausalLMRegistry.ParseConfig(ConfigJson(family)).Build(new Generator(11));
        model.Eval();
        return model;
    }

    private static long[] RandomIds(int count, int vocab, ulong seed)
    {
        var rng = new Generator(seed);
        return Enumerable.Range(0, count).Select(_ => (long)rng.NextInt(vocab)).ToArray();
    }

    private static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        float scale = 0f;
        foreach (var e in expected) scale = Math.Max(scale, Math.Abs(e));
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.False(float.IsNaN(actual[i]), $"{what}: NaN at {i}");
            float diff = Math.Abs(expected[i] - actual[i]);
            Assert.True(diff <= 1e-5f * Math.Max(1f, scale), $"{what}: element {i} differs by {diff} " +
                $"(expected {expected[i]}, got {actual[i]})");
        }
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Last_position_logits_equal_those_rows_of_the_full_forward(string family)
    {
        using var model = Build(family);
        const int b = 3, t = 9;
        int v = model.Config.VocabSize;
        var ids = RandomIds(b * t, v, 5);
        int[] last = [8, 2, 5];
        using var noGrad = Tensor.NoGrad();
        using var scope = new TensorScope();
        var full = model.Forward(Tensor.FromArray(ids, [b, t])).ToArray();                   // [B, T, V]
        var picked = model.ForwardLast(Tensor.FromArray(ids, [b, t]), null, last);          // [B, 1, V]
        Assert.Equal([b, 1, v], picked.Shape.ToArray());
        var lastOnly = picked.ToArray();
        for (int i = 0; i < b; i++)
            AssertClose(full.AsSpan((i * t + last[i]) * v, v), lastOnly.AsSpan(i * v, v), $"{family} sequence {i}");

        // An empty span means T−1 for every sequence; one sequence takes the narrow path.
        var defaults = model.ForwardLast(Tensor.FromArray(ids, [b, t]), null, default).ToArray();
        for (int i = 0; i < b; i++)
            AssertClose(full.AsSpan((i * t + t - 1) * v, v), defaults.AsSpan(i * v, v), $"{family} default {i}");
        var single = model.ForwardLast(Tensor.FromArray(ids.AsSpan(0, t).ToArray(), [1, t]), null, [4]).ToArray();
        AssertClose(full.AsSpan(4 * v, v), single, $"{family} one sequence");
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Last_position_prefill_fills_the_cache_like_the_full_prefill(string family)
    {
        using var model = Build(family);
        const int b = 2, t = 7, s = 3;
        int v = model.Config.VocabSize;
        var prompt = RandomIds(b * t, v, 6);
        var next = RandomIds(b * s, v, 7);
        using var noGrad = Tensor.NoGrad();
        using var scope = new TensorScope();
        using var fullCache = model.CreateCache(b, t + s);
        using var lastCache = model.CreateCache(b, t + s);
        model.Forward(Tensor.FromArray(prompt, [b, t]), fullCache);
        model.ForwardLast(Tensor.FromArray(prompt, [b, t]), lastCache, default);
        Assert.Equal(fullCache.Lengths, lastCache.Lengths);

        // S more tokens for the rows in reverse order: the last-only cached step equals the full one's last row.
        int[] rows = [1, 0];
        var full = model.ForwardCached(Tensor.FromArray(next, [b, s]), fullCache, rows).ToArray();  // [n, S, V]
        var picked = model.ForwardCachedLast(Tensor.FromArray(next, [b, s]), lastCache, rows);     // [n, 1, V]
        Assert.Equal([b, 1, v], picked.Shape.ToArray());
        var lastOnly = picked.ToArray();
        for (int i = 0; i < b; i++)
            AssertClose(full.AsSpan((i * s + s - 1) * v, v), lastOnly.AsSpan(i * v, v), $"{family} cached row {i}");
        Assert.Equal(fullCache.Lengths, lastCache.Lengths);
    }

    [Fact]
    public void Positions_outside_the_prompt_or_of_the_wrong_count_are_refused_before_the_cache_changes()
    {
        using var model = Build("qwen2");
        using var noGrad = Tensor.NoGrad();
        using var scope = new TensorScope();
        using var cache = model.CreateCache(2, 8);
        var ids = Tensor.FromArray(RandomIds(10, 97, 1), [2, 5]);
        var outside = Assert.Throws<ArgumentException>(() => model.ForwardLast(ids, cache, [4, 5]));
        Assert.Contains("sequence 1's position 5 is outside the prompt's 0..4", outside.Message);
        var count = Assert.Throws<ArgumentException>(() => model.ForwardLast(ids, cache, [4]));
        Assert.Contains("one per sequence expected (2), got 1", count.Message);
        Assert.Equal([0, 0], cache.Lengths);
    }
}
