using static NativeReasoner.Tests.Verification.InputSpec;
using static NativeReasoner.Tests.Verification.VerificationUtil;

namespace NativeReasoner.Tests.Verification;

// The op table, part two: softmax, indexing, concatenation, top-k and the transformer functions.
internal static partial class OpCatalog
{
    /// <summary>cos or sin of pos·θ^(−2i/D) for a [T, D/2] rope table (fixed data, like the model's cache).</summary>
    private static InputSpec RopeTable(string name, int T, int D, bool cos) =>
        Constant(name, S(T, D / 2), j =>
        {
            int pos = j / (D / 2), i = j % (D / 2);
            double angle = pos * Math.Pow(10000.0, -2.0 * i / D);
            return (float)(cos ? Math.Cos(angle) : Math.Sin(angle));
        });

    private static IEnumerable<OpCase> BuildNn()
    {
        // ------------------------------------------------------------ softmax / log_softmax
        foreach (var (op, fn) in new (string, Func<Tensor, int, Tensor>)[]
                 { ("softmax", (t, d) => t.Softmax(d)), ("log_softmax", (t, d) => t.LogSoftmax(d)) })
        {
            yield return A($"{op}_last", op, x => fn(x[0], -1), Normal("x", S(7, 13)));
            yield return A($"{op}_d1", op, x => fn(x[0], 1), Normal("x", S(3, 4, 5)));
            yield return A($"{op}_d0", op, x => fn(x[0], 0), Normal("x", S(31, 7)));
            yield return A($"{op}_one", op, x => fn(x[0], 0), Normal("x", S(1)));
            yield return A($"{op}_1031", op, x => fn(x[0], -1), Normal("x", S(2, 1031)));
            yield return A($"{op}_large", op, x => fn(x[0], -1), Normal("x", S(4, 257), 30f));
            yield return A($"{op}_transposed", op, x =>
            {
                using var t = x[0].T();
                return fn(t, -1);
            }, Normal("x", S(13, 7)));
        }

        // ------------------------------------------------------------ indexing
        yield return E("gather_d1", "gather", x => x[0].Gather(1, x[1]), Normal("x", S(4, 6)), Index("index", S(4, 3), 6));
        yield return E("gather_d0", "gather", x => x[0].Gather(0, x[1]), Normal("x", S(4, 6)), Index("index", S(3, 6), 4));
        yield return E("gather_257", "gather", x => x[0].Gather(-1, x[1]), Normal("x", S(7, 257)), Index("index", S(7, 31), 257));
        yield return E("index_select_d1", "index_select", x => x[0].IndexSelect(1, x[1]), Normal("x", S(5, 4, 3)), Index("index", S(6), 4));
        yield return E("index_select_d0", "index_select", x => x[0].IndexSelect(0, x[1]), Normal("x", S(5, 4, 3)), Index("index", S(7), 5));
        yield return E("index_select_1031", "index_select", x => x[0].IndexSelect(0, x[1]), Normal("x", S(1031, 3)), Index("index", S(13), 1031));
        yield return E("scatter_add_d1", "scatter_add", x => x[0].ScatterAdd(1, x[1], x[2]),
            Normal("x", S(4, 6)), Index("index", S(4, 5), 6), Normal("src", S(4, 5)));
        yield return E("scatter_add_d0", "scatter_add", x => x[0].ScatterAdd(0, x[1], x[2]),
            Normal("x", S(5, 7)), Index("index", S(13, 7), 5), Normal("src", S(13, 7)));
        yield return E("embedding", "embedding", x => Functional.Embedding(x[0], x[1]),
            Index("ids", S(3, 5), 11), Normal("weight", S(11, 8)));
        yield return E("embedding_257", "embedding", x => Functional.Embedding(x[0], x[1]),
            Index("ids", S(13), 257), Normal("weight", S(257, 7)));

        // ------------------------------------------------------------ concatenation and splitting
        yield return E("cat_d1", "cat", x => Tensor.Cat([x[0], x[1], x[2]], 1),
            Normal("a", S(2, 3, 4)), Normal("b", S(2, 5, 4)), Normal("c", S(2, 1, 4)));
        yield return E("cat_last", "cat", x => Tensor.Cat([x[0], x[1]], -1), Normal("a", S(3, 2)), Normal("b", S(3, 5)));
        yield return E("cat_257", "cat", x => Tensor.Cat([x[0], x[1]], 0), Normal("a", S(1, 257)), Normal("b", S(13, 257)));
        yield return E("cat_transposed", "cat", x =>
        {
            using var at = x[0].T();
            return Tensor.Cat([at, x[1]], 0);
        }, Normal("a", S(7, 3)), Normal("b", S(5, 7)));
        foreach (var d in new[] { 0, 1, 2, -1 })
            yield return E($"stack_d{d}", "stack", x => Tensor.Stack([x[0], x[1]], d), Normal("a", S(3, 4)), Normal("b", S(3, 4)));
        yield return E("stack_three", "stack", x => Tensor.Stack([x[0], x[1], x[2]], 0), Normal("a", S(7)), Normal("b", S(7)), Normal("c", S(7)));
        yield return new OpCase("split_d1", "split", [Normal("x", S(3, 10))], x => x[0].Split([3, 5, 2], 1).ToArray(), ElementwiseTolerance);
        yield return new OpCase("split_d0", "split", [Normal("x", S(6, 4))], x => x[0].Split([2, 4], 0).ToArray(), ElementwiseTolerance);
        yield return new OpCase("split_257", "split", [Normal("x", S(2, 257))], x => x[0].Split([1, 255, 1], -1).ToArray(), ElementwiseTolerance);

        // ------------------------------------------------------------ top-k (values and exact indices)
        yield return new OpCase("topk_5", "topk", [Distinct("x", S(4, 13))], x =>
        {
            var (v, i) = x[0].TopK(5);
            return [v, i];
        }, ElementwiseTolerance);
        yield return new OpCase("topk_31_of_257", "topk", [Distinct("x", S(7, 257))], x =>
        {
            var (v, i) = x[0].TopK(31);
            return [v, i];
        }, ElementwiseTolerance);
        yield return new OpCase("topk_all", "topk", [Distinct("x", S(3, 7))], x =>
        {
            var (v, i) = x[0].TopK(7);
            return [v, i];
        }, ElementwiseTolerance);

        // ------------------------------------------------------------ transformer functions
        yield return A("rms_norm", "rms_norm", x => Functional.RmsNorm(x[0], x[1], 1e-6f), Normal("x", S(3, 5, 16)), Normal("weight", S(16)));
        yield return A("rms_norm_257", "rms_norm", x => Functional.RmsNorm(x[0], x[1], 1e-5f), Normal("x", S(7, 257)), Normal("weight", S(257)));
        yield return A("rms_norm_1031", "rms_norm", x => Functional.RmsNorm(x[0], x[1], 1e-5f), Normal("x", S(2, 1031)), Normal("weight", S(1031)));
        yield return A("rms_norm_odd", "rms_norm", x => Functional.RmsNorm(x[0], x[1], 1e-6f), Normal("x", S(13, 7)), Normal("weight", S(7)));

        yield return A("rope_bthd", "rope", x => Functional.Rope(x[0], x[1], x[2], 1),
            Normal("x", S(2, 5, 3, 8)), RopeTable("cos", 5, 8, true), RopeTable("sin", 5, 8, false));
        yield return A("rope_bhtd", "rope", x => Functional.Rope(x[0], x[1], x[2], 2),
            Normal("x", S(2, 3, 5, 8)), RopeTable("cos", 5, 8, true), RopeTable("sin", 5, 8, false));
        yield return A("rope_d2_t13", "rope", x => Functional.Rope(x[0], x[1], x[2], 1),
            Normal("x", S(1, 13, 1, 2)), RopeTable("cos", 13, 2, true), RopeTable("sin", 13, 2, false));
        yield return A("rope_t31_d64", "rope", x => Functional.Rope(x[0], x[1], x[2], 0),
            Normal("x", S(31, 3, 64)), RopeTable("cos", 31, 64, true), RopeTable("sin", 31, 64, false));

        yield return A("cross_entropy_ignore", "cross_entropy", x => Functional.CrossEntropy(x[0], x[1]),
            Normal("logits", S(6, 11)), Ints("targets", S(6), (g, i) => i == 2 ? -100 : g.NextInt(11)));
        yield return A("cross_entropy_257", "cross_entropy", x => Functional.CrossEntropy(x[0], x[1]),
            Normal("logits", S(13, 257)), Ints("targets", S(13), (g, _) => g.NextInt(257))) with
        {
            NoGradCheckReason = "a mean over 13×257 logits gives gradients of ~3e-4, below what float32 central " +
                                "differences of a loss of ~6 (ulp 5e-7) resolve; cross_entropy_257_row checks V = 257",
        };
        // One row: gradients ~1/257, and a step of 3e-2 puts the loss's rounding noise at ~0.2 % of them.
        yield return A("cross_entropy_257_row", "cross_entropy", x => Functional.CrossEntropy(x[0], x[1]),
            Normal("logits", S(1, 257)), Ints("targets", S(1), (g, _) => g.NextInt(257))) with
        { GradEps = 3e-2f };
        yield return A("cross_entropy_large", "cross_entropy", x => Functional.CrossEntropy(x[0], x[1]),
            Normal("logits", S(4, 9), 50f), Ints("targets", S(4), (g, _) => g.NextInt(9)));
        yield return A("cross_entropy_one_row", "cross_entropy", x => Functional.CrossEntropy(x[0], x[1], ignoreIndex: 0),
            Normal("logits", S(1, 7)), Ints("targets", S(1), (_, _) => 3));

        yield return A("sdpa", "sdpa", x => Functional.ScaledDotProductAttention(x[0], x[1], x[2], causal: false),
            Normal("q", S(2, 3, 9, 8)), Normal("k", S(2, 3, 9, 8)), Normal("v", S(2, 3, 9, 6)));
        yield return A("sdpa_causal", "sdpa", x => Functional.ScaledDotProductAttention(x[0], x[1], x[2], causal: true, scale: 0.3f),
            Normal("q", S(2, 3, 9, 8)), Normal("k", S(2, 3, 9, 8)), Normal("v", S(2, 3, 9, 6)));
        yield return A("sdpa_t1", "sdpa", x => Functional.ScaledDotProductAttention(x[0], x[1], x[2], causal: true),
            Normal("q", S(1, 2, 1, 8)), Normal("k", S(1, 2, 1, 8)), Normal("v", S(1, 2, 1, 6)));
        // A decode step against a cache: one query sees every key (bottom-right aligned causal mask).
        yield return A("sdpa_decode", "sdpa", x => Functional.ScaledDotProductAttention(x[0], x[1], x[2], causal: true),
            Normal("q", S(2, 2, 1, 16)), Normal("k", S(2, 2, 13, 16)), Normal("v", S(2, 2, 13, 16)));
        yield return A("sdpa_prefill_tail", "sdpa", x => Functional.ScaledDotProductAttention(x[0], x[1], x[2], causal: true),
            Normal("q", S(1, 2, 7, 16)), Normal("k", S(1, 2, 31, 16)), Normal("v", S(1, 2, 31, 13)));
        yield return A("sdpa_257", "sdpa", x => Functional.ScaledDotProductAttention(x[0], x[1], x[2], causal: true),
            Normal("q", S(1, 1, 257, 16)), Normal("k", S(1, 1, 257, 16)), Normal("v", S(1, 1, 257, 16)));
        // Grouped-query attention: 3 query heads per K/V head, and MQA (one K/V head for 7 query heads) decoding.
        yield return A("sdpa_gqa", "sdpa", x => Functional.ScaledDotProductAttention(x[0], x[1], x[2], causal: true),
            Normal("q", S(2, 6, 11, 8)), Normal("k", S(2, 2, 11, 8)), Normal("v", S(2, 2, 11, 6)));
        yield return A("sdpa_mqa_decode", "sdpa",
            x => Functional.ScaledDotProductAttention(x[0], x[1], x[2], causal: true),
            Normal("q", S(1, 7, 1, 16)), Normal("k", S(1, 1, 13, 16)), Normal("v", S(1, 1, 13, 16)));
        yield return A("sdpa_gqa_prefill_tail", "sdpa",
            x => Functional.ScaledDotProductAttention(x[0], x[1], x[2], causal: true),
            Normal("q", S(1, 4, 5, 16)), Normal("k", S(1, 2, 19, 16)), Normal("v", S(1, 2, 19, 13)));
    }
}
