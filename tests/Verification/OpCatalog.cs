using static NativeReasoner.Tests.Verification.InputSpec;
using static NativeReasoner.Tests.Verification.VerificationUtil;

namespace NativeReasoner.Tests.Verification;

/// <summary>
/// The op table: every op of the tensor API at awkward sizes (1, odd, primes 7/13/31, beyond a SIMD block
/// or a tile: 257, 1031), plus the layouts that take special paths (broadcast, transposed, strided views).
/// Each row is run on both devices and compared, and gradient-checked on both devices.
/// </summary>
internal static partial class OpCatalog
{
    private static readonly Lazy<IReadOnlyDictionary<string, OpCase>> s_cases = new(() =>
    {
        var d = new Dictionary<string, OpCase>();
        foreach (var c in Build())
            if (!d.TryAdd(c.Name, c)) throw new InvalidOperationException($"duplicate op case name '{c.Name}'");
        return d;
    });

    public static IReadOnlyDictionary<string, OpCase> All => s_cases.Value;

    public static OpCase Get(string name) => All[name];

    /// <summary>Case names for xunit's MemberData (strings serialize, so each case is its own test).</summary>
    public static IEnumerable<object[]> Names() => All.Keys.Select(n => new object[] { n });

    /// <summary>Cases that are gradient-checked: differentiable, and not excluded with a stated reason.</summary>
    public static IEnumerable<object[]> DifferentiableNames() =>
        All.Values.Where(c => c.Differentiable && c.NoGradCheckReason == null).Select(c => new object[] { c.Name });

    // One output, elementwise tolerance / accumulating tolerance.
    private static OpCase E(string name, string op, Func<Tensor[], Tensor> fn, params InputSpec[] inputs) =>
        new(name, op, inputs, x => [fn(x)], ElementwiseTolerance);

    private static OpCase A(string name, string op, Func<Tensor[], Tensor> fn, params InputSpec[] inputs) =>
        new(name, op, inputs, x => [fn(x)], AccumulatingTolerance);

    private static int[] S(params int[] shape) => shape;

    private static IEnumerable<OpCase> Build() => BuildBasic().Concat(BuildNn());

    private static IEnumerable<OpCase> BuildBasic()
    {
        // ------------------------------------------------------------ unary
        var unary = new (string op, Func<Tensor, Tensor> fn, Func<string, int[], InputSpec> gen)[]
        {
            ("neg", x => x.Neg(), (n, s) => Normal(n, s)),
            ("exp", x => x.Exp(), (n, s) => Normal(n, s)),
            ("log", x => x.Log(), Positive),
            ("sqrt", x => x.Sqrt(), Positive),
            ("rsqrt", x => x.Rsqrt(), Positive),
            ("pow2.5", x => x.Pow(2.5f), Positive),
            ("pow-0.5", x => x.Pow(-0.5f), Positive),
            ("pow3", x => x.Pow(3f), (n, s) => Normal(n, s)),
            ("silu", x => x.Silu(), (n, s) => Normal(n, s, 3f)),
            ("sigmoid", x => x.Sigmoid(), (n, s) => Normal(n, s, 3f)),
            ("tanh", x => x.Tanh(), (n, s) => Normal(n, s, 2f)),
            ("square", x => x.Square(), (n, s) => Normal(n, s)),
            ("relu", x => x.Relu(), AwayFromZero),
            ("abs", x => x.Abs(), AwayFromZero),
            ("mul_scalar", x => x.Mul(-1.75f), (n, s) => Normal(n, s)),
            ("add_scalar", x => x.Add(0.625f), (n, s) => Normal(n, s)),
            ("div_scalar", x => x.Div(3f), (n, s) => Normal(n, s)),
        };
        foreach (var (op, fn, gen) in unary)
            foreach (var shape in new[] { S(1), S(7), S(13, 31), S(1031) })
                // "pow2.5" names the row; the op is "pow".
                yield return E($"{op}[{string.Join("x", shape)}]", op.StartsWith("pow") ? "pow" : op, x => fn(x[0]), gen("x", shape));
        yield return E("exp[rank0]", "exp", x => x[0].Exp(), Normal("x", S()));

        // ------------------------------------------------------------ binary, with broadcasting
        var binary = new (string op, Func<Tensor, Tensor, Tensor> fn, bool divisor)[]
        {
            ("add", (a, b) => a + b, false),
            ("sub", (a, b) => a - b, false),
            ("mul", (a, b) => a * b, false),
            ("div", (a, b) => a / b, true),
        };
        var pairs = new (string tag, int[] a, int[] b)[]
        {
            ("same", S(7, 13), S(7, 13)),
            ("one", S(1), S(1)),
            ("bcast", S(5, 1, 7), S(3, 1)),
            ("scalar_a", S(1), S(4, 6)),
            ("scalar_b", S(4, 6), S(1)),
            ("rank0", S(), S(3, 5)),
            ("outer", S(31, 1), S(1, 257)),
            ("row", S(13, 257), S(257)),
            ("long", S(1031), S(1031)),
        };
        foreach (var (op, fn, divisor) in binary)
            foreach (var (tag, sa, sb) in pairs)
                yield return E($"{op}_{tag}", op, x => fn(x[0], x[1]),
                    Normal("a", sa), divisor ? AwayFromZero("b", sb) : Normal("b", sb));
        // A transposed (non-contiguous) operand goes through the strided path of the binary kernel.
        yield return E("add_transposed", "add", x =>
        {
            using var at = x[0].T();
            return at + x[1];
        }, Normal("a", S(13, 7)), Normal("b", S(7, 13)));
        yield return E("mul_expanded", "mul", x =>
        {
            using var be = x[1].Expand(4, 7, 13);
            return x[0] * be;
        }, Normal("a", S(4, 7, 13)), Normal("b", S(7, 1)));

        // ------------------------------------------------------------ where / masked_fill
        yield return E("where", "where", x => Tensor.Where(x[0], x[1], x[2]),
            Mask("cond", S(4, 1, 5)), Normal("a", S(4, 3, 5)), Normal("b", S(1, 3, 1)));
        yield return E("where_long", "where", x => Tensor.Where(x[0], x[1], x[2]),
            Mask("cond", S(1031)), Normal("a", S(1031)), Normal("b", S(1)));
        yield return E("masked_fill", "masked_fill", x => x[0].MaskedFill(x[1], -1e9f),
            Normal("x", S(7, 13)), Mask("mask", S(7, 13)));
        yield return E("masked_fill_bcast", "masked_fill", x => x[0].MaskedFill(x[1], 0.5f),
            Normal("x", S(4, 31)), Mask("mask", S(1, 31)));

        // ------------------------------------------------------------ reductions
        foreach (var (op, fn) in new (string, Func<Tensor, int[]?, bool, Tensor>)[]
                 { ("sum", (t, d, k) => t.Sum(d, k)), ("mean", (t, d, k) => t.Mean(d, k)) })
        {
            yield return A($"{op}_d1", op, x => fn(x[0], [1], false), Normal("x", S(4, 5, 6)));
            yield return A($"{op}_d02_keep", op, x => fn(x[0], [0, 2], true), Normal("x", S(4, 5, 6)));
            yield return A($"{op}_dlast", op, x => fn(x[0], [-1], false), Normal("x", S(7, 13, 31)));
            yield return A($"{op}_all", op, x => fn(x[0], null, false), Normal("x", S(4, 5, 6)));
            yield return A($"{op}_all_1031", op, x => fn(x[0], null, false), Normal("x", S(1031)));
            yield return A($"{op}_one", op, x => fn(x[0], [0], false), Normal("x", S(1)));
            yield return A($"{op}_rows_257", op, x => fn(x[0], [1], true), Normal("x", S(7, 257)));
            yield return A($"{op}_cols_257", op, x => fn(x[0], [0], false), Normal("x", S(257, 7)));
            yield return A($"{op}_permuted", op, x =>
            {
                using var p = x[0].Permute(2, 0, 1);
                return fn(p, [1], false);
            }, Normal("x", S(3, 13, 5)));
        }
        foreach (var (op, fn) in new (string, Func<Tensor, int, bool, Tensor>)[]
                 { ("max", (t, d, k) => t.Max(d, k)), ("min", (t, d, k) => t.Min(d, k)) })
        {
            yield return A($"{op}_d1", op, x => fn(x[0], 1, false), Distinct("x", S(4, 5, 6)));
            yield return A($"{op}_dlast_keep", op, x => fn(x[0], -1, true), Distinct("x", S(7, 13)));
            yield return A($"{op}_d0", op, x => fn(x[0], 0, false), Distinct("x", S(4, 5, 6)));
            yield return A($"{op}_257", op, x => fn(x[0], 1, false), Distinct("x", S(3, 257)));
            yield return A($"{op}_one", op, x => fn(x[0], 0, false), Distinct("x", S(1)));
        }
        yield return A("max_all", "max", x => x[0].Max(), Distinct("x", S(7, 13)));
        yield return A("min_all", "min", x => x[0].Min(), Distinct("x", S(7, 13)));

        // ------------------------------------------------------------ matmul
        yield return A("matmul_2d", "matmul", x => x[0].MatMul(x[1]), Normal("a", S(7, 13)), Normal("b", S(13, 31)));
        yield return A("matmul_1x1", "matmul", x => x[0].MatMul(x[1]), Normal("a", S(1, 1)), Normal("b", S(1, 1)));
        yield return A("matmul_vec", "matmul", x => x[0].MatMul(x[1]), Normal("a", S(13, 31)), Normal("b", S(31, 1)));
        yield return A("matmul_row", "matmul", x => x[0].MatMul(x[1]), Normal("a", S(1, 31)), Normal("b", S(31, 13)));
        yield return A("matmul_257", "matmul", x => x[0].MatMul(x[1]), Normal("a", S(31, 257)), Normal("b", S(257, 13)));
        yield return A("matmul_big_mn", "matmul", x => x[0].MatMul(x[1]), Normal("a", S(67, 37)), Normal("b", S(37, 71)));
        yield return A("matmul_tb", "matmul", x =>
        {
            using var bt = x[1].T();
            return x[0].MatMul(bt);
        }, Normal("a", S(5, 7)), Normal("b", S(3, 7)));
        yield return A("matmul_ta", "matmul", x =>
        {
            using var at = x[0].T();
            return at.MatMul(x[1]);
        }, Normal("a", S(7, 5)), Normal("b", S(7, 3)));
        yield return A("matmul_ta_tb", "matmul", x =>
        {
            using var at = x[0].T();
            using var bt = x[1].Transpose(-1, -2);
            return at.MatMul(bt);
        }, Normal("a", S(31, 13)), Normal("b", S(7, 31)));
        yield return A("matmul_batched", "matmul", x => x[0].MatMul(x[1]), Normal("a", S(3, 5, 7)), Normal("b", S(3, 7, 2)));
        yield return A("matmul_batched_ta_tb", "matmul", x =>
        {
            using var at = x[0].Transpose(-1, -2);
            using var bt = x[1].Transpose(-1, -2);
            return at.MatMul(bt);
        }, Normal("a", S(3, 7, 5)), Normal("b", S(3, 2, 7)));
        yield return A("matmul_bcast_b", "matmul", x => x[0].MatMul(x[1]), Normal("a", S(2, 3, 5, 7)), Normal("b", S(7, 4)));
        yield return A("matmul_bcast_a", "matmul", x => x[0].MatMul(x[1]), Normal("a", S(5, 7)), Normal("b", S(2, 7, 4)));
        yield return A("matmul_bcast_both", "matmul", x => x[0].MatMul(x[1]), Normal("a", S(2, 1, 5, 7)), Normal("b", S(3, 7, 4)));
        yield return A("matmul_bcast_tb", "matmul", x =>
        {
            using var bt = x[1].T();
            return x[0].MatMul(bt);
        }, Normal("a", S(2, 3, 5, 7)), Normal("b", S(4, 7)));
        // A permuted batch: rows are strided by more than a row (lda > K) and batch items interleave.
        yield return A("matmul_permuted", "matmul", x =>
        {
            using var ap = x[0].Permute(1, 0, 2);
            return ap.MatMul(x[1]);
        }, Normal("a", S(5, 3, 7)), Normal("b", S(3, 7, 4)));
        yield return A("matmul_narrowed", "matmul", x =>
        {
            using var an = x[0].Narrow(1, 2, 9);
            return an.MatMul(x[1]);
        }, Normal("a", S(13, 17)), Normal("b", S(9, 7)));

        yield return A("linear_bias", "linear", x => Tensor.Linear(x[0], x[1], x[2]),
            Normal("x", S(2, 5, 11)), Normal("weight", S(6, 11)), Normal("bias", S(6)));
        yield return A("linear_nobias", "linear", x => Tensor.Linear(x[0], x[1]),
            Normal("x", S(2, 5, 11)), Normal("weight", S(6, 11)));
        yield return A("linear_vector", "linear", x => Tensor.Linear(x[0], x[1], x[2]),
            Normal("x", S(13)), Normal("weight", S(7, 13)), Normal("bias", S(7)));
        yield return A("linear_257", "linear", x => Tensor.Linear(x[0], x[1], x[2]),
            Normal("x", S(3, 257)), Normal("weight", S(13, 257)), Normal("bias", S(13)));

        // ------------------------------------------------------------ views (and their gradients)
        yield return E("reshape", "reshape", x => x[0].Reshape(5, -1), Normal("x", S(3, 5, 7)));
        yield return E("reshape_noncontig", "reshape", x =>
        {
            using var p = x[0].Permute(2, 0, 1);
            return p.Reshape(7, 15);
        }, Normal("x", S(3, 5, 7)));
        yield return E("permute", "permute", x => x[0].Permute(2, 0, 1), Normal("x", S(3, 5, 7)));
        yield return E("transpose", "transpose", x => x[0].Transpose(0, 2), Normal("x", S(3, 5, 7)));
        yield return E("t", "transpose", x => x[0].T(), Normal("x", S(13, 31)));
        yield return E("narrow", "narrow", x => x[0].Narrow(1, 2, 5), Normal("x", S(3, 13)));
        yield return E("narrow_neg_start", "narrow", x => x[0].Narrow(-1, -4, 3), Normal("x", S(3, 13)));
        yield return E("slice_step", "slice", x => x[0].Slice(0, 1, 12, 3), Normal("x", S(13, 7)));
        yield return E("slice_step_last", "slice", x => x[0].Slice(-1, -11, 257, 2), Normal("x", S(3, 257)));
        yield return E("unsqueeze", "unsqueeze", x => x[0].Unsqueeze(1), Normal("x", S(7, 13)));
        yield return E("squeeze", "squeeze", x => x[0].Squeeze(1), Normal("x", S(7, 1, 13)));
        yield return E("squeeze_all", "squeeze", x => x[0].Squeeze(), Normal("x", S(1, 7, 1)));
        yield return E("expand", "expand", x => x[0].Expand(2, 3, 4, 5), Normal("x", S(3, 1, 5)));
        yield return E("expand_keep", "expand", x => x[0].Expand(-1, 31), Normal("x", S(7, 1)));
        yield return E("contiguous", "contiguous", x =>
        {
            using var p = x[0].Permute(1, 0);
            return p.Contiguous();
        }, Normal("x", S(13, 31)));
        yield return E("clone", "clone", x => x[0].Clone(), Normal("x", S(7, 13)));
        yield return E("sum_to_shape", "sum_to_shape", x => x[0].SumToShape(S(3, 1)), Normal("x", S(4, 3, 5)));
        // A chain of views feeding arithmetic: the gradient must come back through every stride.
        yield return E("view_chain", "view_chain", x =>
        {
            using var p = x[0].Permute(1, 0, 2);
            using var s = p.Slice(0, 1, 7, 2);
            using var n = s.Narrow(2, 1, 3);
            return n * n;
        }, Normal("x", S(4, 7, 5)));
    }
}
